"""The pages `sieve rules suggest` learns from: their lines, near-duplicate groups, and where each
page's own content sits (see extractors/learned.py for the algorithm)."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from extractors.dom import outermost
from extractors.textrules import SENTENCE_END

SUGGESTION_KINDS = ("drop_selectors", "cut_at", "drop_lines")

# Everything else (div, p, li, section, td, unknown custom elements, ...) starts a new line.
INLINE_TAGS = frozenset(
    "a abbr acronym b bdi bdo big cite code data del dfn em font i img ins kbd label mark nobr q rp rt "
    "ruby s samp small span strike strong sub sup time tt u var wbr".split()
)
_INVISIBLE = "script, style, noscript, template, head, iframe, svg, canvas, object, embed"
HEADING_TAGS = frozenset("h1 h2 h3 h4 h5 h6 strong b dt th caption legend".split())
SPACES = re.compile(r"[\s\u00a0\u2000-\u200b\u3000\u202f\u205f\ufeff]+")
_DIGITS = re.compile(r"\d+")
COLON_END = re.compile(r"[:：]$")
# half- and full-width forms of one mark are one line (keys are NFKC): the regex accepts both
_PUNCT_VARIANTS = {
    ch: f"[{re.escape(a)}{b}]"
    for a, b in ((":", "："), (",", "，"), ("(", "（"), (")", "）"), ("!", "！"), ("?", "？"), (";", "；"))
    for ch in (a, b)
}
_USABLE_TOKEN = re.compile(r"^[A-Za-z_][\w-]*$")

DUPLICATE_COSINE = 0.5  # pages this similar (on rare lines) are copies of one article
BLOCK_PURITY = 0.8  # share of a block's text that must be repeated lines
CONTAINER_SHARE = 0.7  # the content container holds this share of the page's unique text
CUT_TAIL_SLACK = 0.05  # unique text allowed after a cut marker, as a share of the page's
HEADING_MAX_CHARS = 20
LINE_MAX_CHARS = 200
CANDIDATE_PAGES = 100  # distinct pages looked at to collect candidate selectors
MIN_DISTINCT_PAGES = 3  # fewer distinct pages than this: nothing can be said to recur


@dataclass(slots=True)
class LearnPage:
    url: str
    tree: LexborHTMLParser
    body: LexborNode
    lines: list[str] = field(default_factory=list)  # visible lines, document order
    keys: list[str] = field(default_factory=list)  # normalised lines (digits -> #)
    group: int = 0
    container: LexborNode | None = None
    container_keys: set[str] = field(default_factory=set)
    protected: set[int] = field(default_factory=set)  # mem_ids: title, metadata zone, container and its ancestors
    inside_container: set[int] = field(default_factory=set)
    title_key: str | None = None
    heading_keys: set[str] = field(default_factory=set)
    zone_keys: set[str] = field(default_factory=set)  # lines between title and container (metadata)
    under: dict[int, list[int]] = field(default_factory=dict)  # element mem_id -> indices of its lines
    nodes: dict[int, LexborNode] = field(default_factory=dict)  # mem_id -> element, for elements holding text
    depth: dict[int, int] = field(default_factory=dict)


# ---- text ------------------------------------------------------------------------------------


def text_lines(root: LexborNode) -> tuple[list[str], dict[int, list[int]], dict[int, LexborNode], dict[int, int]]:
    """Visible text, one line per block element or <br>; and for every block element the indices
    of the lines inside it, the element by mem_id and its depth. Iterative: pages nested
    thousands deep must not hit the recursion limit."""
    lines: list[str] = []
    under: dict[int, list[int]] = defaultdict(list)
    nodes: dict[int, LexborNode] = {root.mem_id: root}
    depth: dict[int, int] = {root.mem_id: 0}
    current: list[str] = []
    open_blocks: list[int] = [root.mem_id]

    def flush() -> None:
        if current:
            line = SPACES.sub(" ", "".join(current)).strip()
            if line:
                index = len(lines)
                lines.append(line)
                for element_id in open_blocks:
                    under[element_id].append(index)
            current.clear()

    stack: list[LexborNode | None] = list(reversed(list(root.iter(include_text=True))))
    while stack:
        node = stack.pop()
        if node is None:
            flush()
            open_blocks.pop()
            continue
        if node.is_text_node:
            current.append(node.text_content or "")
            continue
        if not node.is_element_node:
            continue
        tag = node.tag
        if tag == "br":
            flush()
            continue
        if tag not in INLINE_TAGS:
            flush()
            element_id = node.mem_id
            nodes[element_id] = node
            depth[element_id] = len(open_blocks)
            open_blocks.append(element_id)
            stack.append(None)
        stack.extend(reversed(list(node.iter(include_text=True))))
    flush()
    return lines, under, nodes, depth


def line_key(line: str) -> str:
    """What makes two lines "the same line": NFKC, case, whitespace and digit runs ignored."""
    text = unicodedata.normalize("NFKC", line).lower()
    return _DIGITS.sub("#", SPACES.sub("", text))


def line_regex(line: str) -> str:
    """An anchored regex for a whole line; digit runs and whitespace generalised, the rest literal."""
    line = SPACES.sub(" ", line).strip()
    parts: list[str] = []
    for token in re.split(r"(\d+|\s+)", line):
        if not token:
            continue
        if token.isspace():
            parts.append(r"\s*")
        elif token.isdigit():
            parts.append(r"\d+")
        else:
            parts.append("".join(_PUNCT_VARIANTS.get(ch, re.escape(ch)) for ch in token))
    return "^" + "".join(parts) + "$"


def is_sentence(line: str) -> bool:
    return bool(SENTENCE_END.search(line.strip()))


# ---- parsing and grouping ----------------------------------------------------------------------


def parse(url: str, html: str, drop: tuple[str, ...]) -> LearnPage | None:
    if not html or not html.strip():
        return None
    try:
        tree = LexborHTMLParser(html)
    except Exception:  # unparsable input says nothing about the template
        return None
    body = tree.body
    if body is None:
        return None
    for selector in (_INVISIBLE, *drop):
        try:
            nodes = tree.css(selector)
        except Exception:  # a bad configured selector must not stop learning
            continue
        for node in outermost(nodes):
            node.decompose()
    page = LearnPage(url=url, tree=tree, body=body)
    refresh_lines(page)
    return page if page.lines else None


def refresh_lines(page: LearnPage) -> None:
    """Lines of the page, and for every block element the indices of the lines inside it."""
    page.lines, page.under, page.nodes, page.depth = text_lines(page.body)
    page.keys = [line_key(line) for line in page.lines]


def nodes_lines(page: LearnPage, node: LexborNode) -> list[int]:
    """Indices of the lines inside a node: from the index when the node is a block or an ancestor
    of one; an inline node's text lies inside one line of its block (matched by text)."""
    if node.mem_id in page.nodes:
        return page.under.get(node.mem_id, [])
    text = line_key(node.text(deep=True))
    if not text:
        return []
    block = next((n for n in walk_up(node) if n.mem_id in page.nodes), None)
    candidates = page.under.get(block.mem_id, []) if block is not None else []
    return [i for i in candidates if page.keys[i] in text or text in page.keys[i]]


def keys_under(page: LearnPage, node: LexborNode) -> list[str]:
    return [page.keys[i] for i in page.under.get(node.mem_id, ())]


def sample(pages: Sequence[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """A deterministic sample (by URL hash) when there are more pages than needed."""
    if len(pages) <= limit:
        return list(pages)
    ranked = sorted(pages, key=lambda page: hashlib.sha1(page[0].encode("utf-8", "replace")).digest())
    return ranked[:limit]


def group_near_duplicates(pages: list[LearnPage]) -> int:
    """Give copies of one article the same `group`; return the number of distinct pages.

    Cosine similarity over each page's set of lines, weighted by length x log(N / page frequency):
    a line on every page weighs nothing, a long line shared by two pages weighs a lot.
    """
    n = len(pages)
    raw = [set(SPACES.sub("", line) for line in page.lines) for page in pages]
    df: dict[str, int] = defaultdict(int)
    for lines in raw:
        for line in lines:
            df[line] += 1
    weights = [{line: len(line) * math.log(n / df[line]) for line in lines if df[line] < n} for lines in raw]
    norms = [math.sqrt(sum(w * w for w in ws.values())) for ws in weights]
    postings: dict[str, list[int]] = defaultdict(list)
    for index, lines in enumerate(raw):
        for line in lines:
            if 1 < df[line] <= max(2, int(0.9 * n)):
                postings[line].append(index)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    checked: set[tuple[int, int]] = set()
    for members in postings.values():
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1 :]:
                if (a, b) in checked or find(a) == find(b):
                    continue
                checked.add((a, b))
                if not norms[a] or not norms[b]:
                    continue
                small, large = (
                    (weights[a], weights[b]) if len(weights[a]) < len(weights[b]) else (weights[b], weights[a])
                )
                dot = sum(w * large[line] for line, w in small.items() if line in large)
                if dot / (norms[a] * norms[b]) >= DUPLICATE_COSINE:
                    parent[find(b)] = find(a)
    roots: dict[int, int] = {}
    for index, page in enumerate(pages):
        page.group = roots.setdefault(find(index), len(roots))
    return len(roots)


# ---- tree helpers ---------------------------------------------------------------------------


def walk_elements(root: LexborNode) -> Iterable[tuple[LexborNode, int]]:
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        stack.extend((child, depth + 1) for child in node.iter(include_text=False))


def ancestor_ids(node: LexborNode) -> set[int]:
    ids = set()
    current: LexborNode | None = node
    while current is not None:
        ids.add(current.mem_id)
        current = current.parent
    return ids


def selectors_of(node: LexborNode) -> list[str]:
    """Class and id selectors naming this element (tokens with digits vary per page: skipped)."""
    attrs = node.attributes
    out = []
    classes = sorted(
        {c for c in (attrs.get("class") or "").split() if _USABLE_TOKEN.match(c) and not any(ch.isdigit() for ch in c)}
    )
    if classes:
        out.append("." + ".".join(classes))
    element_id = (attrs.get("id") or "").strip()
    if element_id and _USABLE_TOKEN.match(element_id) and not any(ch.isdigit() for ch in element_id):
        out.append("#" + element_id)
    return out


def locate_content(page: LearnPage, unique: set[str]) -> None:
    """Find the container of the page's unique text and protect it, its ancestors, the title and
    what lies between them (author, account, date)."""
    unique_chars = [len(k) if k in unique else 0 for k in page.keys]
    total = sum(unique_chars)
    best: tuple[int, LexborNode] | None = None
    if total:
        for element_id, indices in page.under.items():
            node = page.nodes[element_id]
            if node.tag in INLINE_TAGS:
                continue
            held = sum(unique_chars[i] for i in indices)
            depth = page.depth[element_id]
            if held >= CONTAINER_SHARE * total and (best is None or depth > best[0]):
                best = (depth, node)
    container = best[1] if best else page.body
    page.container = container
    page.container_keys = set(keys_under(page, container))
    page.inside_container = {node.mem_id for node, _ in walk_elements(container)}
    protected = ancestor_ids(container)
    title = page.body.css_first("h1")
    if title is not None:
        page.title_key = line_key(title.text(deep=True))
        title_chain = ancestor_ids(title)
        # the lowest common ancestor of title and container: metadata lives below it
        common = next((n for n in walk_up(container) if n.mem_id in title_chain), None)
        if common is not None:
            protected |= {node.mem_id for node, _ in walk_elements(common)} - page.inside_container
            page.zone_keys = set(keys_under(page, common)) - page.container_keys
        protected |= title_chain
    page.protected = protected
    page.heading_keys = set()
    for tag in HEADING_TAGS:
        for node in page.body.css(tag):
            keys = keys_under(page, node) if node.tag not in INLINE_TAGS else [line_key(node.text(deep=True))]
            if len(keys) == 1 and keys[0]:
                page.heading_keys.add(keys[0])


def walk_up(node: LexborNode) -> Iterable[LexborNode]:
    current: LexborNode | None = node
    while current is not None:
        yield current
        current = current.parent
