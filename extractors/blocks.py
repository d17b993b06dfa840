"""The article's candidate blocks, best first (extractors/pipeline.py's third step): a known container
(the source's content_selector, WeChat's #js_content) when it holds text; else the density block and
trafilatura's text on the region around it, of which choose.py picks one and bounds trafilatura's lines
by the density block's span. The runner-up comes second, for when the text rules empty the winner.
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from extractors.choose import bound_to_span, choose_block, last_lines_of_block, line_link_shares, lost_prose_of_block
from extractors.density import Candidate, describe
from extractors.genre import CompiledRules
from extractors.lines import PageLines, cjk_share, locate, page_lines, squash
from extractors.region import MAX_TRAFILATURA_NODES, trafilatura_lines, trafilatura_region
from extractors.trace import Trace

MIN_ARTICLE_CHARS = 30  # shorter than this (non-space characters) is not an article
_KNOWN_CONTAINERS = ("#js_content", "#img-content .rich_media_content")


@dataclass(slots=True)
class Block:
    """A candidate for the article: its lines and each line's share of link text."""

    name: str
    lines: list[str]
    shares: list[float]


def main_blocks(
    tree: LexborHTMLParser,
    url: str,
    cr: CompiledRules,
    candidate: Candidate | None,
    title: str | None,
    trace: Trace | None,
    links: frozenset[int],
) -> list[Block]:
    """The article's candidate blocks, best first."""
    selectors = ((cr.content_selector,) if cr.content_selector else ()) + _KNOWN_CONTAINERS
    for selector in selectors:
        try:
            node = tree.css_first(selector)
        except Exception:  # an invalid selector from config is refused at load; be safe anyway
            node = None
        if node is not None:
            lines = page_lines(node, links=links)
            if sum(map(len, lines.lines)) >= MIN_ARTICLE_CHARS:
                if trace is not None:
                    trace.candidate("selector", selector, sum(map(len, lines.lines)))
                    trace.choose("selector", f"the known container {selector} holds text")
                return [Block("selector", lines.lines, _shares(lines, 0, len(lines.lines)))]

    body = tree.body
    assert body is not None  # _extract rejects a page without a body before it gets here
    region = trafilatura_region(tree, candidate)
    traf: list[str] | None = None
    if candidate is not None and cjk_share([candidate.node.text(deep=True)]) < 0.3:
        fast, traf = _latin_blocks(tree, url, candidate, region, links, trace)
        if fast is not None:
            return fast
    # the page's lines where trafilatura reads (its region), with the density block's span
    page = page_lines(
        region if region is not None else body,
        candidate.node if candidate else None,
        links,
        candidate.discounted if candidate else frozenset(),
    )
    span = page.span
    if span is None and candidate is not None and trace is not None:
        trace.step("density", "the density block holds no visible line")
    dense = page.lines[span[0] : span[1]] if span else []
    dense_block = Block("density", dense, _shares(page, *span) if span else [])
    if trace is not None and candidate is not None:
        trace.candidate(
            "density",
            describe(candidate.node),
            candidate.chars,
            candidate.score,
            f"{candidate.link_chars} link chars, {candidate.punct_share:.0%} of the page's punctuation, "
            f"{candidate.notices} notice blocks discounted",
        )

    too_big = (
        candidate.nodes_up[0]
        if candidate is not None and candidate.nodes_up
        else len(body.css("*"))
        if candidate is None
        else 0
    )
    if too_big > MAX_TRAFILATURA_NODES:
        if trace is not None:
            trace.choose("density", f"{too_big} elements in the block or page: too big for trafilatura")
        return [dense_block] if dense else []
    if traf is None:
        traf = trafilatura_lines(tree, url, region, trace)
    located = locate(traf, page)
    shares = line_link_shares(located, page)
    if trace is not None:
        trace.candidate(
            "trafilatura", "region around the density block" if candidate else "whole page", sum(map(len, traf))
        )
    choice = choose_block(traf, dense, located, shares, span, title)
    if trace is not None:
        trace.choose(choice.block, choice.reason)
    if choice.block == "density":
        traf_block = Block("trafilatura", traf, shares)
        return [dense_block, traf_block] if traf else [dense_block]
    # bounded on Chinese text only: trafilatura has no Chinese stoplists (FIELD-NOTES), so on
    # Chinese portals its end overruns; on English pages its own end detection is the better one
    if cjk_share(dense) >= 0.3:
        kept = bound_to_span(traf, located, shares, span, cr.notice, page, title)
    else:
        kept = list(range(len(traf)))
    if trace is not None:
        keep = set(kept)
        for index, line in enumerate(traf):
            if index not in keep:
                trace.remove("bound", "outside the density block's span", line)
    tail = last_lines_of_block([located[i] for i in kept], page, span, cr.notice)
    lost = [] if tail else lost_prose_of_block([located[i] for i in kept], page, span, cr.notice)
    if trace is not None and lost:
        trace.step("bound", f"trafilatura stopped early in a block of prose: kept its {len(lost)} next prose lines")
    tail = tail or lost
    if trace is not None:
        for index in tail:
            trace.step(
                "bound", f"kept the density block's last line that trafilatura skipped: {page.lines[index][:60]}"
            )
    traf_block = Block(
        "trafilatura",
        [traf[i] for i in kept] + [page.lines[i] for i in tail],
        [shares[i] for i in kept] + [page.link_share(i) for i in tail],
    )
    return [traf_block, dense_block] if dense else [traf_block]


def _latin_blocks(
    tree: LexborHTMLParser,
    url: str,
    candidate: Candidate,
    region: LexborNode | None,
    links: frozenset[int],
    trace: Trace | None,
) -> tuple[list[Block] | None, list[str] | None]:
    """The common case on non-Chinese pages, cheaply: trafilatura's text holds the density block
    from its first line to its last and little else, so it wins as it is (no bound: its end
    detection is the better one there) and the page's lines need not be located. (None, its
    lines): decide the long way with them."""
    if candidate.nodes_up and candidate.nodes_up[0] > MAX_TRAFILATURA_NODES:
        return None, None
    block = page_lines(candidate.node, links=links)
    if not block.lines:
        return None, None
    traf = trafilatura_lines(tree, url, region, trace)
    flat = squash("".join(traf))
    head, tail = squash(block.lines[0])[:20], squash(block.lines[-1])[-20:]
    start = flat.find(head)
    if start < 0 or flat.find(tail, start) < 0 or len(flat) > 1.15 * len(squash("".join(block.lines))):
        return None, traf  # not held, or held with more around it: its edges need the page's link lines
    if trace is not None:
        trace.candidate(
            "density",
            describe(candidate.node),
            candidate.chars,
            candidate.score,
            f"{candidate.link_chars} link chars, {candidate.notices} notice blocks discounted",
        )
        trace.candidate("trafilatura", "region around the density block", sum(map(len, traf)))
        trace.choose("trafilatura", "its text holds the density block from first line to last")
    dense = Block("density", block.lines, _shares(block, 0, len(block.lines)))
    by_text = {
        squash(line): share for line, share in zip(dense.lines, dense.shares, strict=True)
    }  # its lines are the block's
    return [Block("trafilatura", traf, [by_text.get(squash(line), 0.0) for line in traf]), dense], traf


def _shares(page: PageLines, start: int, end: int) -> list[float]:
    return [page.link_share(i) for i in range(start, end)]
