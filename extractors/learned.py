"""Learn a source's boilerplate from its own pages: blocks and lines that recur across many pages.

Why: aggregators change templates and hot lists every day, so hand-written rules drift; what
recurs on many pages of one source is template, not article. The algorithm, pure and I/O-free:

1. Parse every page (selectolax lexbor); drop script/style and the source's own drop_selectors.
2. Count near-duplicate pages as one: pages sharing most of their rare lines (a cosine over lines
   weighted by length x inverse page frequency, so template lines weigh nothing) are one
   "distinct page". A sentence republished in ten copies of one article then recurs on one page,
   not ten; a paragraph repeated inside one article counts once (lines are sets per page).
3. Find each page's content container: the deepest element holding most of the page's unique
   text (lines seen on no other distinct page). The title, the container and everything between
   them (author, source, date) are protected.
4. `drop_selectors`: class/id selectors of blocks present on >= min_share of distinct pages whose
   text is almost all repeated lines, that never match the container, an ancestor of it, the
   title or the metadata between them. Nested or duplicate selectors are pruned (outermost wins).
5. `cut_at`: a short heading-like line (h2-h6/strong/..., or a label ending in a colon) recurring
   on >= min_share of pages, after which, on every page that has it, only repeated text follows.
6. `drop_lines`: whole lines still recurring on >= min_share of pages once the selectors and cuts
   have done their work; never the title or a metadata line (author, source, date), never a
   sentence (ending in 。！？…) from inside the content container (an author's sign-off such as
   "以上,欢迎交流。" is article text). Regexes are anchored, escaped, with digit runs as \\d+.

More than `max_pages` pages: a deterministic sample (by URL hash) is used; 400 pages of 17 KB
take about 4 s of CPU.

Every suggestion carries its share of distinct pages, an example, and the characters it would
remove over the pages given. `learned_rules` turns suggestions into `Rules`; `merge_rules` adds
them to a source's configured rules (the "learned" extraction mode: off unless a caller merges).
"""
from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from extractors.model import Rules
from extractors.regex import compile_rule

__all__ = ["Suggestion", "suggest_rules", "learned_rules", "rules_from", "merge_rules", "SUGGESTION_KINDS"]

SUGGESTION_KINDS = ("drop_selectors", "cut_at", "drop_lines")

# Everything else (div, p, li, section, td, unknown custom elements, ...) starts a new line.
_INLINE_TAGS = frozenset(
    "a abbr acronym b bdi bdo big cite code data del dfn em font i img ins kbd label mark nobr q rp rt "
    "ruby s samp small span strike strong sub sup time tt u var wbr".split()
)
_INVISIBLE = "script, style, noscript, template, head, iframe, svg, canvas, object, embed"
_HEADING_TAGS = frozenset("h1 h2 h3 h4 h5 h6 strong b dt th caption legend".split())
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200b\u3000\u202f\u205f\ufeff]+")
_DIGITS = re.compile(r"\d+")
_SENTENCE_END = re.compile(r"[。！？!?…]\s*[”\"」』)）]?$")
_COLON_END = re.compile(r"[:：]$")
# half- and full-width forms of one mark are one line (keys are NFKC): the regex accepts both
_PUNCT_VARIANTS = {ch: f"[{re.escape(a)}{b}]" for a, b in ((":", "："), (",", "，"), ("(", "（"), (")", "）"),
                                                          ("!", "！"), ("?", "？"), (";", "；"))
                   for ch in (a, b)}
_USABLE_TOKEN = re.compile(r"^[A-Za-z_][\w-]*$")

DUPLICATE_COSINE = 0.5      # pages this similar (on rare lines) are copies of one article
BLOCK_PURITY = 0.8          # share of a block's text that must be repeated lines
CONTAINER_SHARE = 0.7       # the content container holds this share of the page's unique text
CUT_TAIL_SLACK = 0.05       # unique text allowed after a cut marker, as a share of the page's
HEADING_MAX_CHARS = 20
LINE_MAX_CHARS = 200
CANDIDATE_PAGES = 100      # distinct pages looked at to collect candidate selectors
MIN_DISTINCT_PAGES = 3      # fewer distinct pages than this: nothing can be said to recur


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One proposed rule. `share` counts near-duplicate pages once; `chars_removed` is the total
    over the pages given; `builtin` says the global genre rules already do this."""

    kind: str            # "drop_selectors" | "cut_at" | "drop_lines" (the Rules field it goes into)
    value: str           # a CSS selector or an anchored regex
    share: float         # share of distinct pages it applies to
    pages: int           # distinct pages it applies to
    example: str         # text it would remove, from one page
    chars_removed: int
    builtin: bool = False


@dataclass(slots=True)
class _Page:
    url: str
    tree: LexborHTMLParser
    body: LexborNode
    lines: list[str] = field(default_factory=list)   # visible lines, document order
    keys: list[str] = field(default_factory=list)    # normalised lines (digits -> #)
    group: int = 0
    container: LexborNode | None = None
    container_keys: set[str] = field(default_factory=set)
    protected: set[int] = field(default_factory=set)    # mem_ids: title, metadata zone, container and its ancestors
    inside_container: set[int] = field(default_factory=set)
    title_key: str | None = None
    heading_keys: set[str] = field(default_factory=set)
    zone_keys: set[str] = field(default_factory=set)    # lines between title and container (metadata)
    under: dict[int, list[int]] = field(default_factory=dict)   # element mem_id -> indices of its lines
    nodes: dict[int, LexborNode] = field(default_factory=dict)  # mem_id -> element, for elements holding text
    depth: dict[int, int] = field(default_factory=dict)


# ---- text ------------------------------------------------------------------------------------

def _text_lines(root: LexborNode) -> tuple[list[str], dict[int, list[int]], dict[int, LexborNode], dict[int, int]]:
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
            line = _SPACES.sub(" ", "".join(current)).strip()
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
        if tag not in _INLINE_TAGS:
            flush()
            element_id = node.mem_id
            nodes[element_id] = node
            depth[element_id] = len(open_blocks)
            open_blocks.append(element_id)
            stack.append(None)
        stack.extend(reversed(list(node.iter(include_text=True))))
    flush()
    return lines, under, nodes, depth


def _key(line: str) -> str:
    """What makes two lines "the same line": NFKC, case, whitespace and digit runs ignored."""
    text = unicodedata.normalize("NFKC", line).lower()
    return _DIGITS.sub("#", _SPACES.sub("", text))


def _line_regex(line: str) -> str:
    """An anchored regex for a whole line; digit runs and whitespace generalised, the rest literal."""
    line = _SPACES.sub(" ", line).strip()
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


def _is_sentence(line: str) -> bool:
    return bool(_SENTENCE_END.search(line.strip()))


# ---- parsing and grouping ----------------------------------------------------------------------

def _parse(url: str, html: str, drop: tuple[str, ...]) -> _Page | None:
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
        for node in _outermost(nodes):
            node.decompose()
    page = _Page(url=url, tree=tree, body=body)
    _refresh_lines(page)
    return page if page.lines else None


def _refresh_lines(page: _Page) -> None:
    """Lines of the page, and for every block element the indices of the lines inside it."""
    page.lines, page.under, page.nodes, page.depth = _text_lines(page.body)
    page.keys = [_key(line) for line in page.lines]


def _nodes_lines(page: _Page, node: LexborNode) -> list[int]:
    """Indices of the lines inside a node: from the index when the node is a block or an ancestor
    of one; an inline node's text lies inside one line of its block (matched by text)."""
    if node.mem_id in page.nodes:
        return page.under.get(node.mem_id, [])
    text = _key(node.text(deep=True))
    if not text:
        return []
    block = next((n for n in _walk_up(node) if n.mem_id in page.nodes), None)
    candidates = page.under.get(block.mem_id, []) if block is not None else []
    return [i for i in candidates if page.keys[i] in text or text in page.keys[i]]


def _keys_under(page: _Page, node: LexborNode) -> list[str]:
    return [page.keys[i] for i in page.under.get(node.mem_id, ())]


def _sample(pages: Sequence[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """A deterministic sample (by URL hash) when there are more pages than needed."""
    if len(pages) <= limit:
        return list(pages)
    ranked = sorted(pages, key=lambda page: hashlib.sha1(page[0].encode("utf-8", "replace")).digest())
    return ranked[:limit]


def _group_near_duplicates(pages: list[_Page]) -> int:
    """Give copies of one article the same `group`; return the number of distinct pages.

    Cosine similarity over each page's set of lines, weighted by length x log(N / page frequency):
    a line on every page weighs nothing, a long line shared by two pages weighs a lot.
    """
    n = len(pages)
    raw = [set(_SPACES.sub("", line) for line in page.lines) for page in pages]
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
            for b in members[a_pos + 1:]:
                if (a, b) in checked or find(a) == find(b):
                    continue
                checked.add((a, b))
                if not norms[a] or not norms[b]:
                    continue
                small, large = (weights[a], weights[b]) if len(weights[a]) < len(weights[b]) else (weights[b], weights[a])
                dot = sum(w * large[line] for line, w in small.items() if line in large)
                if dot / (norms[a] * norms[b]) >= DUPLICATE_COSINE:
                    parent[find(b)] = find(a)
    roots: dict[int, int] = {}
    for index, page in enumerate(pages):
        page.group = roots.setdefault(find(index), len(roots))
    return len(roots)


# ---- tree helpers ---------------------------------------------------------------------------

def _elements(root: LexborNode) -> Iterable[tuple[LexborNode, int]]:
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        stack.extend((child, depth + 1) for child in node.iter(include_text=False))


def _ancestor_ids(node: LexborNode) -> set[int]:
    ids = set()
    current = node
    while current is not None:
        ids.add(current.mem_id)
        current = current.parent
    return ids


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    ids = {node.mem_id for node in nodes}
    keep, seen = [], set()
    for node in nodes:
        if node.mem_id in seen:
            continue
        seen.add(node.mem_id)
        parent = node.parent
        while parent is not None and parent.mem_id not in ids:
            parent = parent.parent
        if parent is None:
            keep.append(node)
    return keep


def _selectors_of(node: LexborNode) -> list[str]:
    """Class and id selectors naming this element (tokens with digits vary per page: skipped)."""
    attrs = node.attributes
    out = []
    classes = sorted({c for c in (attrs.get("class") or "").split() if _USABLE_TOKEN.match(c) and not any(ch.isdigit() for ch in c)})
    if classes:
        out.append("." + ".".join(classes))
    element_id = (attrs.get("id") or "").strip()
    if element_id and _USABLE_TOKEN.match(element_id) and not any(ch.isdigit() for ch in element_id):
        out.append("#" + element_id)
    return out


def _locate_content(page: _Page, unique: set[str]) -> None:
    """Find the container of the page's unique text and protect it, its ancestors, the title and
    what lies between them (author, account, date)."""
    unique_chars = [len(k) if k in unique else 0 for k in page.keys]
    total = sum(unique_chars)
    best: tuple[int, LexborNode] | None = None
    if total:
        for element_id, indices in page.under.items():
            node = page.nodes[element_id]
            if node.tag in _INLINE_TAGS:
                continue
            held = sum(unique_chars[i] for i in indices)
            depth = page.depth[element_id]
            if held >= CONTAINER_SHARE * total and (best is None or depth > best[0]):
                best = (depth, node)
    container = best[1] if best else page.body
    page.container = container
    page.container_keys = set(_keys_under(page, container))
    page.inside_container = {node.mem_id for node, _ in _elements(container)}
    protected = _ancestor_ids(container)
    title = page.body.css_first("h1")
    if title is not None:
        page.title_key = _key(title.text(deep=True))
        title_chain = _ancestor_ids(title)
        # the lowest common ancestor of title and container: metadata lives below it
        common = next((n for n in _walk_up(container) if n.mem_id in title_chain), None)
        if common is not None:
            protected |= {node.mem_id for node, _ in _elements(common)} - page.inside_container
            page.zone_keys = set(_keys_under(page, common)) - page.container_keys
        protected |= title_chain
    page.protected = protected
    page.heading_keys = set()
    for tag in _HEADING_TAGS:
        for node in page.body.css(tag):
            keys = _keys_under(page, node) if node.tag not in _INLINE_TAGS else [_key(node.text(deep=True))]
            if len(keys) == 1 and keys[0]:
                page.heading_keys.add(keys[0])


def _walk_up(node: LexborNode) -> Iterable[LexborNode]:
    current = node
    while current is not None:
        yield current
        current = current.parent


# ---- the three kinds of suggestion -------------------------------------------------------------

def _suggest_selectors(
    pages: list[_Page], n_groups: int, min_share: float, repeated: set[str]
) -> tuple[list[Suggestion], dict[int, list[LexborNode]]]:
    # candidates from one page per distinct page (at most CANDIDATE_PAGES of them, with a lower
    # bar so sampling misses nothing); every candidate is then checked on every page
    first_of_group: dict[int, _Page] = {}
    for page in pages:
        first_of_group.setdefault(page.group, page)
    sample = list(first_of_group.values())[::max(1, len(first_of_group) // CANDIDATE_PAGES)]
    seen: dict[str, int] = defaultdict(int)
    for page in sample:
        names: set[str] = set()
        for node, _ in _elements(page.body):
            if node.mem_id in page.protected or node.tag in ("body", "html"):
                continue
            attrs = node.attributes
            if "class" in attrs or "id" in attrs:
                names.update(_selectors_of(node))
        for name in names:
            seen[name] += 1
    candidates = [s for s, count in seen.items() if count / len(sample) >= min_share / 2]
    scored: list[tuple[Suggestion, dict[int, list[LexborNode]]]] = []
    for selector in candidates:
        groups: set[int] = set()
        total = repeated_chars = 0
        example = ""
        matches: dict[int, list[LexborNode]] = {}
        violated = False
        for index, page in enumerate(pages):
            try:
                nodes = _outermost(page.tree.css(selector))
            except Exception:
                violated = True
                break
            if not nodes:
                continue
            ids = {node.mem_id for node in nodes}
            if ids & page.protected:
                violated = True  # the container, an ancestor of it, the title or the metadata
                break
            indices: list[int] = []
            for node in nodes:
                found = _nodes_lines(page, node)
                if node.mem_id in page.inside_container and any(page.keys[i] not in repeated for i in found):
                    violated = True  # unique text of the article
                    break
                indices.extend(found)
            keys = [page.keys[i] for i in indices]
            if violated or (page.title_key and page.title_key in keys):
                violated = True
                break
            chars = sum(map(len, keys))
            if chars:
                groups.add(page.group)
                total += chars
                repeated_chars += sum(len(k) for k in keys if k in repeated)
                example = example or " / ".join(page.lines[i] for i in indices[:6])[:80]
            matches[index] = nodes
            if violated:
                break
        share = len(groups) / n_groups
        if violated or share < min_share or not total or repeated_chars < BLOCK_PURITY * total:
            continue
        scored.append((Suggestion("drop_selectors", selector, share, len(groups), example, total), matches))
    # outermost first; a selector whose every match lies inside a kept one adds nothing
    scored.sort(key=lambda item: (-item[0].chars_removed, item[0].value))
    kept: list[Suggestion] = []
    kept_nodes: dict[int, set[int]] = defaultdict(set)
    for suggestion, matches in scored:
        inside = all(
            any(ancestor.mem_id in kept_nodes[index] for ancestor in _walk_up(node))
            for index, nodes in matches.items()
            for node in nodes
        )
        if inside:
            continue
        kept.append(suggestion)
        for index, nodes in matches.items():
            kept_nodes[index].update(node.mem_id for node in nodes)
    removal: dict[int, list[LexborNode]] = defaultdict(list)
    kept_values = {s.value for s in kept}
    for suggestion, matches in scored:
        if suggestion.value in kept_values:
            for index, nodes in matches.items():
                removal[index].extend(nodes)
    return kept, removal


def _suggest_cuts(pages: list[_Page], n_groups: int, min_share: float, repeated: set[str]) -> tuple[list[Suggestion], dict[int, int]]:
    """Heading-like recurring lines after which only repeated text follows, on every page."""
    positions: dict[str, dict[int, int]] = defaultdict(dict)   # key -> page index -> first line index
    for index, page in enumerate(pages):
        for position, (line, key) in enumerate(zip(page.lines, page.keys)):
            if position == 0 or key in positions and index in positions[key]:
                continue
            if not key or len(key) > HEADING_MAX_CHARS or key == page.title_key or _is_sentence(line):
                continue
            if key in page.heading_keys or _COLON_END.search(line):
                positions[key][index] = position
    found: list[tuple[Suggestion, dict[int, int]]] = []
    for key, where in positions.items():
        groups = {pages[i].group for i in where}
        if len(groups) / n_groups < min_share:
            continue
        ok, removed = True, 0
        for index, position in where.items():
            page = pages[index]
            unique_total = sum(len(k) for k in page.keys if k not in repeated)
            tail_unique = sum(len(k) for k in page.keys[position:] if k not in repeated)
            if tail_unique > CUT_TAIL_SLACK * unique_total:
                ok = False
                break
            removed += sum(len(k) for k in page.keys[position:])
        if ok:
            first = next(iter(where))
            example_line = pages[first].lines[where[first]]
            found.append((Suggestion("cut_at", _line_regex(example_line), len(groups) / n_groups, len(groups),
                                     example_line, removed), where))
    # a marker that always follows another kept marker adds nothing
    found.sort(key=lambda item: (-item[0].chars_removed, item[0].value))
    kept: list[Suggestion] = []
    cut_from: dict[int, int] = {}
    for suggestion, where in found:
        if all(index in cut_from and cut_from[index] < position for index, position in where.items()):
            continue
        kept.append(suggestion)
        for index, position in where.items():
            cut_from[index] = min(position, cut_from.get(index, position))
    return kept, cut_from


def _suggest_lines(pages: list[_Page], n_groups: int, min_share: float, cut_from: dict[int, int]) -> list[Suggestion]:
    groups: dict[str, set[int]] = defaultdict(set)
    chars: dict[str, int] = defaultdict(int)
    examples: dict[str, str] = {}
    banned: set[str] = set()
    for index, page in enumerate(pages):
        end = cut_from.get(index, len(page.lines))
        for line, key in zip(page.lines[:end], page.keys[:end]):
            if not key or len(line) > LINE_MAX_CHARS:
                continue
            if key == page.title_key or key in page.zone_keys or (key in page.container_keys and _is_sentence(line)):
                banned.add(key)
            groups[key].add(page.group)
            chars[key] += len(line)
            examples.setdefault(key, line)
    out = []
    for key, seen in groups.items():
        share = len(seen) / n_groups
        if key in banned or share < min_share:
            continue
        out.append(Suggestion("drop_lines", _line_regex(examples[key]), share, len(seen), examples[key], chars[key]))
    out.sort(key=lambda s: (-s.share, -s.chars_removed, s.value))
    return out


# ---- rule coverage ----------------------------------------------------------------------------

def _patterns(rules: Rules) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    compile_all = lambda patterns: [compile_rule(p) for p in patterns]  # noqa: E731  (RE2, as extraction runs them)
    return compile_all(rules.drop_lines), compile_all(rules.cut_at)


def _builtin_patterns() -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """The global genre rules' line patterns, when the extractor provides them."""
    try:
        from extractors.genre import compiled
    except Exception:  # the genre rules are optional for learning
        return [], []
    rules = compiled(None)
    return list(rules.drop_lines), list(rules.cut_at)


def _covered(suggestion: Suggestion, drop_lines: list[re.Pattern[str]], cut_at: list[re.Pattern[str]]) -> bool:
    if suggestion.kind == "drop_lines":
        return any(p.search(suggestion.example) for p in drop_lines + cut_at)
    if suggestion.kind == "cut_at":
        return any(p.search(suggestion.example) for p in cut_at)
    return False


# ---- public API --------------------------------------------------------------------------------

def suggest_rules(
    pages: Sequence[tuple[str, str]],
    *,
    min_share: float = 0.3,
    base: Rules | None = None,
    max_pages: int = 400,
) -> list[Suggestion]:
    """Rules that remove what recurs on at least `min_share` of one source's distinct pages.

    `pages` are (url, html) of one source. `base` is the source's configured rules: its selectors
    are applied before learning, and nothing it already does is proposed again. Suggestions the
    global genre rules already cover are kept, marked `builtin=True`.
    """
    if not 0 < min_share <= 1:
        raise ValueError("min_share must be in (0, 1]")
    base = base or Rules()
    parsed = [p for url, html in _sample(pages, max_pages) if (p := _parse(url, html, base.drop_selectors))]
    if len(parsed) < MIN_DISTINCT_PAGES:
        return []
    n_groups = _group_near_duplicates(parsed)
    if n_groups < MIN_DISTINCT_PAGES:
        return []
    line_groups: dict[str, set[int]] = defaultdict(set)
    for page in parsed:
        for key in page.keys:
            line_groups[key].add(page.group)
    repeated = {key for key, groups in line_groups.items() if len(groups) >= 2}
    unique = {key for key, groups in line_groups.items() if len(groups) == 1}
    for page in parsed:
        _locate_content(page, unique)

    selectors, removal = _suggest_selectors(parsed, n_groups, min_share, repeated)
    for index, nodes in removal.items():
        for node in _outermost(nodes):
            node.decompose()
        _refresh_lines(parsed[index])
    cuts, cut_from = _suggest_cuts(parsed, n_groups, min_share, repeated)
    lines = _suggest_lines(parsed, n_groups, min_share, cut_from)

    base_lines, base_cuts = _patterns(base)
    builtin_lines, builtin_cuts = _builtin_patterns()
    out: list[Suggestion] = list(selectors)
    for suggestion in cuts + lines:
        if _covered(suggestion, base_lines, base_cuts):
            continue
        if _covered(suggestion, builtin_lines, builtin_cuts):
            suggestion = Suggestion(**{**_asdict(suggestion), "builtin": True})
        out.append(suggestion)
    return out


def _asdict(suggestion: Suggestion) -> dict:
    return {name: getattr(suggestion, name) for name in Suggestion.__slots__}


def rules_from(suggestions: Iterable[Suggestion], *, include_builtin: bool = False) -> Rules:
    """The suggestions as a Rules object (those the genre rules already cover left out by default)."""
    fields: dict[str, list[str]] = {kind: [] for kind in SUGGESTION_KINDS}
    for suggestion in suggestions:
        if suggestion.builtin and not include_builtin:
            continue
        if suggestion.value not in fields[suggestion.kind]:
            fields[suggestion.kind].append(suggestion.value)
    return Rules(**{kind: tuple(values) for kind, values in fields.items()})


def learned_rules(
    pages: Sequence[tuple[str, str]], min_share: float = 0.3, *, base: Rules | None = None
) -> Rules:
    """Rules learned from one source's pages; use as `merge_rules(source_rules, learned)`."""
    return rules_from(suggest_rules(pages, min_share=min_share, base=base))


def merge_rules(base: Rules, extra: Rules) -> Rules:
    """`base` plus what `extra` adds (order kept, duplicates dropped); base's scalars win."""
    def union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a + b))

    return Rules(
        drop_selectors=union(base.drop_selectors, extra.drop_selectors),
        content_selector=base.content_selector or extra.content_selector,
        cut_at=union(base.cut_at, extra.cut_at),
        drop_lines=union(base.drop_lines, extra.drop_lines),
        strip_prefix=union(base.strip_prefix, extra.strip_prefix),
        timezone=base.timezone,
    )
