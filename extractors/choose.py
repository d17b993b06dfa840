"""Which block is the article, trafilatura's text or the density block (density.py), and where it ends.

trafilatura is the better block-finder on ordinary pages; on Chinese portal pages it sometimes
returns too little, another block (a sidebar), or the article plus what follows it (click rankings,
related lists, legal lines, share bars). Its lines are located on the page (lines.locate), so each
case is recognised from where its lines come from and whether they are link texts, not from
character bags (for Chinese any prose shares characters with any anchor).

When trafilatura wins, its lines are bounded by the density block's span: the lines from the first
to the last that fall inside the block are kept, plus the prose that adjoins them (an article split
in two containers by an ad), and nothing after a run of link lines.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from extractors.density import punctuation_marks
from extractors.lines import CJK_CHAR, SENTENCE_PUNCT, PageLines, sentence_marks, squash
from extractors.scoring import tokens
from extractors.textrules import key

__all__ = [
    "Choice",
    "choose_block",
    "bound_to_span",
    "last_lines_of_block",
    "line_link_shares",
    "is_prose",
    "TOO_LITTLE",
    "LINK_LINE",
]

TOO_LITTLE = 0.25  # trafilatura's text under this share of the density block's: too little
LINK_LINE = 0.5  # a line this much link text is a link (a headline, a tag, a menu entry)
_PROSE_CHARS = 12
SENTENCE_END_CHARS = "。！？.!?”」…"
_LABEL_CHARS = 12


@dataclass(frozen=True, slots=True)
class Choice:
    block: str  # "trafilatura" | "density"
    reason: str


def _punct_ratio(lines: list[str]) -> float:
    text = "".join(lines)
    return punctuation_marks(text) / (len(text) or 1)


def _title_share(lines: list[str], title_tokens: Counter[str]) -> float:
    """How much of the title's vocabulary a text uses: the article talks about its title."""
    if not title_tokens:
        return 0.0
    return sum((tokens("\n".join(lines)) & title_tokens).values()) / sum(title_tokens.values())


def is_prose(line: str) -> bool:
    """A sentence-like line: long enough and punctuated, or ending like a sentence."""
    chars = len(squash(line))
    if chars < _PROSE_CHARS:
        return False
    marks = sentence_marks(line)
    return marks >= 1 and (marks >= 2 or line.rstrip()[-1:] in "。！？.!?”」…")


def line_link_shares(located: list[tuple[int, int] | None], page: PageLines) -> list[float]:
    """Share of each located line's text that is link text on the page (0 for lines not found)."""
    out = []
    for where in located:
        if where is None:
            out.append(0.0)
            continue
        first, last = where
        chars = sum(len(squash(page.lines[i])) for i in range(first, last + 1))
        links = sum(page.link_chars[i] for i in range(first, last + 1))
        out.append(links / chars if chars else 0.0)
    return out


_LETTER = re.compile(r"[^\W\d_]")


def _letters(line: str) -> int:
    return len(_LETTER.findall(line))


def _inside(where: tuple[int, int] | None, span: tuple[int, int]) -> bool:
    return where is not None and where[0] < span[1] and where[1] >= span[0]


def choose_block(
    traf: list[str],
    dense: list[str],
    located: list[tuple[int, int] | None],
    shares: list[float],
    span: tuple[int, int] | None,
    title: str | None = None,
) -> Choice:
    """trafilatura, unless it found too little, or another block than the density choice and a
    less article-like one, or the density block plus a pile of link lines (a headline list)."""
    if not dense:
        return Choice("trafilatura", "no density block")
    if not traf:
        return Choice("density", "trafilatura found nothing")
    if _punct_ratio(dense) < 0.01:
        return Choice("trafilatura", "the density block is not prose")
    traf_chars, dense_chars = sum(map(len, traf)), sum(map(len, dense))
    if traf_chars < TOO_LITTLE * dense_chars:
        return Choice("density", f"trafilatura found too little ({traf_chars} vs {dense_chars} chars)")
    inside_chars = sum(
        len(line) for line, where in zip(traf, located, strict=True) if span is not None and _inside(where, span)
    )
    if inside_chars < 0.5 * min(traf_chars, dense_chars):
        # two different blocks: the one that talks about the title, else the more punctuated
        title_tokens = tokens(title or "")
        traf_share, dense_share = _title_share(traf, title_tokens), _title_share(dense, title_tokens)
        if abs(traf_share - dense_share) >= 0.2:
            block = "density" if dense_share > traf_share else "trafilatura"
            return Choice(block, f"different blocks; {block} uses more of the title's words")
        outside = [
            (line, share)
            for line, share, where in zip(traf, shares, located, strict=True)
            if not _inside(where, span or (0, 0))
        ]
        linkish = _link_share_of(outside)
        if linkish > 0.5:
            return Choice("density", f"different blocks; trafilatura's is {linkish:.0%} link lines")
        if dense_chars >= 0.5 * traf_chars and _punct_ratio(dense) > _punct_ratio(traf):
            return Choice("density", "different blocks; the density block is more punctuated")
        return Choice("trafilatura", "different blocks; trafilatura's is larger or more punctuated")
    return Choice("trafilatura", "trafilatura's text holds the density block")


def _link_share_of(lines: list[tuple[str, float]]) -> float:
    """Share of the characters of these lines that sit in link lines."""
    total = sum(len(line) for line, _ in lines)
    if not total:
        return 0.0
    return sum(len(line) for line, share in lines if share >= LINK_LINE) / total


def bound_to_span(
    traf: list[str],
    located: list[tuple[int, int] | None],
    shares: list[float],
    span: tuple[int, int] | None,
    notice: re.Pattern[str] | None = None,
    page: PageLines | None = None,
    title: str | None = None,
) -> list[int]:
    """Indices of trafilatura's lines to keep: from the first to the last line inside the density
    block, widened over adjoining prose that is neither a link line nor a notice. Before the block,
    a short label line between that prose and more of it ("推荐阅读" left of an embedded related box
    whose links trafilatura dropped) is stepped over and dropped."""
    everything = list(range(len(traf)))
    if span is None:
        return everything
    inside = [i for i, where in enumerate(located) if _inside(where, span)]
    if not inside:
        return everything
    start, end = inside[0], inside[-1] + 1
    labels: set[int] = set()
    title_key = key(title) if title else ""

    def noticed(i: int) -> bool:
        """A notice by the vocabulary, or a line of a block density did not count."""
        where = located[i]
        in_block = page is not None and where is not None and where[0] in page.noticed
        return in_block or (notice is not None and notice.search(traf[i]) is not None)

    def adjoins(i: int) -> bool:
        return shares[i] < LINK_LINE and is_prose(traf[i]) and not noticed(i)

    def links_between(i: int, j: int) -> bool:
        """Link lines on the page between trafilatura's lines i < j (that it dropped: the
        headlines of a teaser list, whose summaries it kept), or the title: the article never
        reaches back past its own headline."""
        first, last = located[i], located[j]
        if page is None or first is None or last is None:
            return False
        between = range(first[1] + 1, last[0])
        return any(page.link_share(k) >= LINK_LINE or (title_key and key(page.lines[k]) == title_key) for k in between)

    def label(i: int) -> bool:
        return len(squash(traf[i])) <= _LABEL_CHARS and not any(ch in SENTENCE_PUNCT for ch in traf[i].rstrip("：:"))

    while start > 0:
        if adjoins(start - 1) and not links_between(start - 1, start):
            start -= 1
        elif start > 1 and adjoins(start - 1) and adjoins(start - 2) and not links_between(start - 2, start - 1):
            start -= 2  # a box of links between two runs of the article's prose (an embedded related box)
        elif start > 1 and label(start - 1) and adjoins(start - 2):
            labels.add(start - 1)
            start -= 2
        else:
            break
    while end < len(traf) and adjoins(end) and not links_between(end - 1, end):
        end += 1  # no stepping over labels after the block: "责任编辑" and such lead to chrome
    kept = [i for i in range(start, end) if i not in labels]
    # Not an overrun but more of the same, so no bound, when what would go is (a) more teasers
    # and what stays is one too (a page of teasers: the list check decides), or (b) mostly prose
    # that is no teaser, as much as what stays (an article in several containers). A teaser is a
    # prose line beside a link line, on the page or in trafilatura's text (headline, summary).
    outside = [i for i in everything if i not in set(kept)]

    def prose(i: int) -> bool:
        return shares[i] < LINK_LINE and _letters(traf[i]) >= 20 and not noticed(i)

    def teaser(i: int) -> bool:
        beside = any(0 <= j < len(traf) and shares[j] >= LINK_LINE for j in (i - 1, i + 1))
        return prose(i) and (beside or (i > 0 and links_between(i - 1, i)))

    outside_chars = sum(len(traf[i]) for i in outside)
    kept_chars = sum(len(traf[i]) for i in kept)
    teasers = sum(len(traf[i]) for i in outside if teaser(i))
    other_prose = sum(len(traf[i]) for i in outside if prose(i) and not teaser(i))
    if outside_chars and teasers > 0.5 * outside_chars and teasers >= 0.5 * kept_chars and any(map(teaser, inside)):
        return everything
    if outside_chars and other_prose > 0.5 * outside_chars and other_prose >= 0.5 * kept_chars:
        return everything
    return kept


_TRAILING_MAX = 2


def _last_line_in_block(located: list[tuple[int, int] | None], span: tuple[int, int] | None) -> int | None:
    """The page line where trafilatura's text last touches the density block (None: it never does)."""
    if span is None:
        return None
    last = max((where[1] for where in located if where is not None and where[1] < span[1]), default=None)
    return None if last is None or last < span[0] else last


def last_lines_of_block(
    located: list[tuple[int, int] | None],
    page: PageLines,
    span: tuple[int, int] | None,
    notice: re.Pattern[str] | None = None,
) -> list[int]:
    """Page lines of the density block after trafilatura's last line that trafilatura skipped: a
    last short paragraph (it drops one that ends in a logo link). Only one or two, each a Chinese
    sentence and no link: a longer run there is a related list inside the article's container."""
    last = _last_line_in_block(located, span)
    if span is None or last is None:
        return []
    rest = list(range(last + 1, span[1]))
    if not rest or len(rest) > _TRAILING_MAX:
        return []
    for index in rest:
        line = page.lines[index]
        ends_sentence = line.rstrip()[-1:] in SENTENCE_END_CHARS
        # Chinese by its letters: figures and percent signs ("降至77.8%") are not another script
        if (
            page.link_share(index) >= LINK_LINE
            or not is_prose(line)
            or not ends_sentence
            or len(CJK_CHAR.findall(line)) < 0.5 * _letters(line)
            or (notice is not None and notice.search(line))
        ):
            return []
    return rest


PART_OF_BLOCK = 0.6  # trafilatura's text under this share of a linkless prose block: it stopped inside it
_FEW_LINKS = 0.05  # share of the block's characters in link lines (menus, lists) for "linkless"
_LABEL_MAX = 24  # a short line between two runs of prose ("Advertisement"): stepped over, dropped


def lost_prose_of_block(
    located: list[tuple[int, int] | None],
    page: PageLines,
    span: tuple[int, int] | None,
    notice: re.Pattern[str] | None = None,
) -> list[int]:
    """Page lines of the density block after trafilatura's last line, when trafilatura stopped early in a
    block of prose without links (an article body cut in chunks by ad rows: it reads the first chunk):
    the prose that follows, up to the first link line or notice, stepping over short labels."""
    last = _last_line_in_block(located, span)
    if span is None or last is None:
        return []
    block_chars = sum(len(squash(page.lines[i])) for i in range(*span))
    block_links = sum(len(squash(page.lines[i])) for i in range(*span) if page.link_share(i) >= LINK_LINE)
    held = sum(len(squash(page.lines[i])) for i in range(span[0], last + 1))
    if not block_chars or held >= PART_OF_BLOCK * block_chars or block_links >= _FEW_LINKS * block_chars:
        return []
    found: list[int] = []
    for index in range(last + 1, span[1]):
        line = page.lines[index]
        if page.link_share(index) >= LINK_LINE or (notice is not None and notice.search(line)):
            break
        if is_prose(line):
            found.append(index)
        elif len(squash(line)) > _LABEL_MAX:
            break
    return found
