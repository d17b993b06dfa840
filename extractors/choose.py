"""Which block is the article: trafilatura's text or the density block (density.py)?

trafilatura is the better block-finder on ordinary pages; on Chinese aggregator and portal
pages it sometimes returns too little, another block (a sidebar), or the article plus a list of
related headlines. Each case is recognised from the two texts alone.
"""
from __future__ import annotations

from collections import Counter

from extractors.density import PUNCTUATION
from extractors.scoring import tokens

__all__ = ["choose_block", "TOO_LITTLE"]

TOO_LITTLE = 0.25  # trafilatura's text under this share of the density block's: too little


def _punct_ratio(lines: list[str]) -> float:
    total = sum(len(line) for line in lines) or 1
    return sum(1 for line in lines for ch in line if ch in PUNCTUATION) / total


def _title_share(lines: list[str], title_tokens: Counter[str]) -> float:
    """How much of the title's vocabulary a text uses: the article talks about its title."""
    if not title_tokens:
        return 0.0
    return sum((tokens("\n".join(lines)) & title_tokens).values()) / sum(title_tokens.values())


def _contiguous_within(traf: list[str], dense: list[str]) -> bool:
    """trafilatura's lines are the density block's lines minus some at the edges (and not a scrap
    of it): the two agree, trafilatura only trimmed more."""
    if traf == dense:
        return True
    if len(traf) >= len(dense) or traf[0] not in dense:
        return False
    start = dense.index(traf[0])
    if dense[start : start + len(traf)] != traf:
        return False
    return sum(map(len, traf)) >= TOO_LITTLE * sum(map(len, dense))


def choose_block(traf: list[str], dense: list[str], link_texts: list[str], title: str | None = None) -> str:
    """trafilatura, unless it found too little, or another block than the density choice and a
    less article-like one, or the density block plus a pile of link texts (a headline list)."""
    if not dense:
        return "trafilatura"
    if not traf:
        return "density"
    if _contiguous_within(traf, dense):  # the common case on clean pages: nothing to decide
        return "trafilatura"
    if _punct_ratio(dense) < 0.01:
        return "trafilatura"
    traf_bag, dense_bag = tokens("\n".join(traf)), tokens("\n".join(dense))
    traf_n, dense_n = sum(traf_bag.values()), sum(dense_bag.values())
    if traf_n < TOO_LITTLE * dense_n:
        return "density"
    overlap = sum((traf_bag & dense_bag).values())
    if overlap < 0.5 * min(traf_n, dense_n):
        # two different blocks: the one that talks about the title, else the more punctuated
        title_tokens = tokens(title or "")
        traf_share, dense_share = _title_share(traf, title_tokens), _title_share(dense, title_tokens)
        if abs(traf_share - dense_share) >= 0.2:
            return "density" if dense_share > traf_share else "trafilatura"
        if dense_n >= 0.5 * traf_n and _punct_ratio(dense) > _punct_ratio(traf):
            return "density"
        return "trafilatura"
    if overlap >= 0.8 * dense_n and traf_n > 1.3 * dense_n:
        extra = traf_bag - dense_bag
        extra_n = sum(extra.values())
        anchor_tokens = tokens(" ".join(link_texts))
        linkish = sum((extra & anchor_tokens).values()) / extra_n if extra_n else 0.0
        if linkish > 0.5:
            return "density"
    return "trafilatura"
