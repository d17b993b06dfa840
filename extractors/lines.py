"""The page as lines, the way a reader sees it: one line per block element or <br>, inline runs joined.

Every extraction path ends in these lines (one paragraph per line, whitespace collapsed), and each
line knows how much of it is link text, so the choice of block and the edge trims can ask "is this
line a link?" of the line itself instead of comparing character bags. `locate` maps the lines of
another extractor (trafilatura) back onto the page's lines, so its text can be bounded by the
density block's span.

Iterative (explicit stacks), never recursive: pages nested thousands deep must not hit Python's
recursion limit.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from selectolax.lexbor import LexborNode

__all__ = [
    "BLOCK_TAGS",
    "PageLines",
    "page_lines",
    "node_text",
    "locate",
    "is_real_link",
    "real_links",
    "swallowing_hrefs",
    "squash",
    "normalise_lines",
    "SENTENCE_PUNCT",
    "CharCount",
    "sentence_marks",
    "CJK_RANGES",
    "TOKEN",
    "CJK_CHAR",
    "cjk_share",
]

BLOCK_TAGS = frozenset(
    "address article aside blockquote body center dd details dialog dir div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main menu nav ol p "
    "pre section summary table tbody thead tfoot tr td th ul caption legend".split()
)
_SKIP_TAGS = frozenset("script style noscript template head title meta link img".split())
# every run of these becomes one space; a lone " " already is one, so it is never matched (on
# English text most runs are a lone space: replacing each with itself took 4x longer)
_SPACE_CLASS = r" \t\r\f\v\u00a0\u2000-\u200b\u3000\u202f\u205f\ufeff"
_SPACES = re.compile(rf"[{_SPACE_CLASS[1:]}][{_SPACE_CLASS}]*| [{_SPACE_CLASS}]+")
# CJK ideographs, kana, hangul: one token each (scoring, simhash); ideographs for "is this Chinese"
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
TOKEN = re.compile(rf"[{CJK_RANGES}]|[^\W{CJK_RANGES}]+")
CJK_CHAR = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NOT_CJK = re.compile("[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
SENTENCE_PUNCT = frozenset("，。！？；：、,.!?;")


class CharCount:
    """How many characters of a text belong to a set. Not a loop over the text in Python, nor
    str.translate (a dictionary lookup per character: 13 ms on a 100 KB text node): one regex
    pass on a short text, one str.count per character of the set on a long one."""

    __slots__ = ("chars", "pattern")
    _LONG = 200

    def __init__(self, chars: frozenset[str]) -> None:
        self.chars = "".join(sorted(chars))
        self.pattern = re.compile("[" + re.escape(self.chars) + "]")

    def __call__(self, text: str) -> int:
        if len(text) > self._LONG:
            return sum(map(text.count, self.chars))
        return len(self.pattern.findall(text))


sentence_marks = CharCount(SENTENCE_PUNCT)
_PROSE_LINK_CHARS = 200  # an anchor with this much punctuated text is prose, not a link
_PROSE_LINK_MARKS = 4
_SENTENCE_LINK_CHARS = 30
_END_BLOCK = 0
_END_LINK = 1
_END_MARK = 2
_END_NOTICE = 3


def squash(text: str) -> str:
    """Text without any whitespace: how lines from different extractors are compared."""
    return "".join(text.split())


def is_real_link(node: LexborNode, swallowing: frozenset[str] = frozenset()) -> bool:
    """An <a> that is a link for density purposes: one with an href, not holding long punctuated
    prose, and not an unclosed <a> that swallowed the article. The HTML parser re-opens such an
    <a> inside every following paragraph (<p><a href=x>paragraph</a></p>, the same href each
    time): `swallowing` are those hrefs (see swallowing_hrefs). A card
    (<a><div>title</div><div>teaser</div></a>) in a menu or a related list is a link: its text
    is short, and each card has its own href."""
    href = node.attributes.get("href")
    if href is None or href in swallowing:
        return False
    text = node.text(deep=True)
    if len(text) < _PROSE_LINK_CHARS:
        return True
    return sentence_marks(text) < _PROSE_LINK_MARKS


def real_links(root: LexborNode, texts: dict[int, str] | None = None) -> frozenset[int]:
    """mem_ids of the anchors under root that are links (is_real_link), decided once per page.
    Same rules as is_real_link, in one pass: most anchors are short and need no attribute read.
    `texts`, when given, is filled with each anchor's text (mem_id -> text)."""
    short: list[int] = []
    long: list[tuple[LexborNode, str, int]] = []
    counts: dict[str, int] = {}
    for node in root.css("a[href]"):
        text = node.text(deep=True)
        if texts is not None:
            texts[node.mem_id] = text
        if len(text) < _SENTENCE_LINK_CHARS:
            short.append(node.mem_id)
            continue
        marks = sentence_marks(text)
        href = node.attributes.get("href") or ""
        long.append((node, href, marks if len(text) >= _PROSE_LINK_CHARS else 0))
        if marks >= 2:
            counts[href] = counts.get(href, 0) + 1
    swallowing = {href for href, count in counts.items() if count >= 3}
    return frozenset(short).union(
        node.mem_id for node, href, marks in long if href not in swallowing and marks < _PROSE_LINK_MARKS
    )


def swallowing_hrefs(root: LexborNode) -> frozenset[str]:
    """hrefs shared by three or more anchors that each hold a punctuated sentence: one unclosed <a>,
    re-opened by the parser in paragraph after paragraph."""
    counts: dict[str, int] = {}
    for node in root.css("a[href]"):
        text = node.text(deep=True)
        if len(text) >= _SENTENCE_LINK_CHARS and sentence_marks(text) >= 2:
            href = node.attributes.get("href") or ""
            counts[href] = counts.get(href, 0) + 1
    return frozenset(href for href, count in counts.items() if count >= 3)


@dataclass(slots=True)
class PageLines:
    lines: list[str]
    link_chars: list[int]  # non-space characters of each line that sit inside real links
    span: tuple[int, int] | None  # [first, last) line indices of the marked node, when one was given
    noticed: frozenset[int] = frozenset()  # lines inside blocks density did not count (notices, teaser lists)

    def link_share(self, index: int) -> float:
        chars = len(squash(self.lines[index]))
        return self.link_chars[index] / chars if chars else 0.0


def page_lines(
    root: LexborNode,
    mark: LexborNode | None = None,
    links: frozenset[int] | None = None,
    discounted: frozenset[int] = frozenset(),
) -> PageLines:
    """Visible lines under root; for `mark` (a descendant), the range of lines it holds; lines
    inside the `discounted` elements (mem_ids) are remembered in `noticed`. `links` are the
    real links' mem_ids (real_links), computed here when not given."""
    if links is None:
        links = real_links(root)
    lines: list[str] = []
    link_chars: list[int] = []
    current: list[str] = []
    current_links = 0
    link_depth = 0
    span_start: int | None = None
    span_end: int | None = None
    mark_id = mark.mem_id if mark is not None else None
    noticed: set[int] = set()
    notice_depth = 0

    def flush() -> None:
        nonlocal current_links
        if current:
            line = _SPACES.sub(" ", "".join(current)).strip()
            if line:
                if notice_depth:
                    noticed.add(len(lines))
                lines.append(line)
                link_chars.append(current_links)
            current.clear()
        current_links = 0

    # stack items: a node to enter, or an int meaning "a block / link / the mark ended here"
    stack: list[LexborNode | int] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, int):
            if node == _END_LINK:
                link_depth -= 1
            elif node == _END_NOTICE:
                flush()
                notice_depth -= 1
            else:
                flush()
                if node == _END_MARK:
                    span_end = len(lines)
            continue
        if node.is_text_node:
            text = node.text_content
            if text:
                current.append(text.replace("\n", " "))
                if link_depth:
                    current_links += len(squash(text))
            continue
        if not node.is_element_node:
            continue
        tag = node.tag
        if tag in _SKIP_TAGS:
            continue
        if tag == "br":
            flush()
            continue
        if node.mem_id in discounted:
            flush()
            notice_depth += 1
            stack.append(_END_NOTICE)
        if node.mem_id == mark_id:
            flush()
            span_start = len(lines)
            stack.append(_END_MARK)
        elif tag in BLOCK_TAGS:
            flush()
            stack.append(_END_BLOCK)
        if tag == "a" and node.mem_id in links:
            link_depth += 1
            stack.append(_END_LINK)
        stack.extend(reversed(list(node.iter(include_text=True))))
    flush()
    span = (span_start, span_end if span_end is not None else len(lines)) if span_start is not None else None
    return PageLines(lines, link_chars, span, frozenset(noticed))


def node_text(root: LexborNode) -> str:
    """Visible text of a node, one line per block element or <br>; whitespace collapsed."""
    return "\n".join(page_lines(root).lines)


def cjk_share(lines: list[str]) -> float:
    """Share of the non-space characters that are Chinese ideographs."""
    text = "".join("".join(lines).split())
    return len(_NOT_CJK.sub("", text)) / len(text) if text else 0.0  # what is left is the ideographs


def normalise_lines(text: str) -> list[str]:
    """Text from any extractor as sieve's lines: odd spaces to one space, trimmed, empty lines gone,
    trafilatura's table rows ("| a | b |") as cells joined by a space."""
    out = []
    for line in text.splitlines():
        line = _SPACES.sub(" ", line).strip()
        if line.startswith("|") and line.endswith("|") and len(line) > 1:
            line = " ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
        if line:
            out.append(line)
    return out


def locate(other: list[str], page: PageLines) -> list[tuple[int, int] | None]:
    """For each line of another extractor's text, the [first, last] page lines it was taken from
    (None when its text is not on the page). Searched in order, as extractors keep document order."""
    starts: list[int] = []
    parts: list[str] = []
    offset = 0
    for line in page.lines:
        starts.append(offset)
        part = squash(line)
        parts.append(part)
        offset += len(part)
    flat = "".join(parts)
    out: list[tuple[int, int] | None] = []
    cursor = 0
    probe = 16
    for line in other:
        needle = squash(line)
        if not needle:
            out.append(None)
            continue
        pos = flat.find(needle, cursor)
        if pos < 0:
            pos = flat.find(needle)
        end = pos + len(needle)
        if pos < 0 and len(needle) > 2 * probe:
            # the other extractor joined or trimmed page lines: find its two ends separately
            pos = flat.find(needle[:probe], cursor)
            if pos < 0:
                pos = flat.find(needle[:probe])
            tail = flat.find(needle[-probe:], pos + probe) if pos >= 0 else -1
            end = tail + probe if tail >= 0 and tail - pos < 3 * len(needle) else pos + probe
        if pos < 0:
            out.append(None)
            continue
        first = bisect_right(starts, pos) - 1
        last = bisect_right(starts, end - 1) - 1
        out.append((first, last))
        if pos >= cursor:
            cursor = end
    return out
