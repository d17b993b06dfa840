"""Is this page a list of headlines rather than an article?"""

from __future__ import annotations

import re

from extractors.genre import CompiledRules
from extractors.textrules import link_key

__all__ = ["looks_like_list", "headline_links", "MIN_HEADLINES"]

_PAGINATION = re.compile(r"(上一页|下一页|尾页|首页\s*上一页|Next page|Older posts)", re.IGNORECASE)
_ENDS_WITH_TIME = re.compile(
    r"(\d+\s*(秒|分钟|小时|天)前|\d{1,2}:\d{2}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}月\d{1,2}日|昨天|前天|刚刚)\s*$"
)
_URLISH = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
MIN_HEADLINES = 8


def headline_links(link_texts: list[str]) -> int:
    """Links that read like headlines: long enough, not a URL."""
    return sum(1 for text in link_texts if len(text) >= 8 and not _URLISH.match(text))


def _is_teaser(line: str, cr: CompiledRules) -> bool:
    return len(line) < 240 and any(p.search(line) for p in cr.teaser_lines)


def looks_like_list(
    link_texts: list[str], lines: list[str], cr: CompiledRules, link_keys: list[str] | None = None
) -> bool:
    """A page of headlines: many extracted lines are a link text, start with one (headline then
    teaser), or are "...(展开)" teasers, and no long run of prose holds most of the rest.
    `link_keys`, when the caller has them, are link_key() of each link text."""
    if len(lines) < 5:
        return False
    keys = link_keys if link_keys is not None else list(map(link_key, link_texts))
    anchors = {key for text, key in zip(link_texts, keys, strict=True) if len(text) >= 6 and not _URLISH.match(text)}
    by_head: dict[str, list[str]] = {}
    for anchor in anchors:
        if len(anchor) >= 6:
            by_head.setdefault(anchor[:6], []).append(anchor)

    def is_listing(line: str) -> bool:
        key = link_key(line)
        if key in anchors or _is_teaser(line, cr):
            return True
        # "headline teaser... 3小时前": starts with a link text and ends with a time
        return _ENDS_WITH_TIME.search(line[-24:]) is not None and any(
            key.startswith(anchor) for anchor in by_head.get(key[:6], ())
        )

    listing = [is_listing(line) for line in lines]
    # an article is a run of prose (with perhaps a few "headline【source】date" lines under it);
    # a list page interleaves link lines with teasers: when one uninterrupted run of other lines
    # holds most of their text, it is an article, however many link lines surround it
    other_chars = sum(len(line) for line, is_link in zip(lines, listing, strict=True) if not is_link)
    longest = run = run_lines = longest_lines = 0
    for line, is_link in zip(lines, listing, strict=True):
        run, run_lines = (0, 0) if is_link else (run + len(line), run_lines + 1)
        if run > longest:
            longest, longest_lines = run, run_lines
    if other_chars and longest >= 0.5 * other_chars and (longest >= 200 or longest_lines >= 3):
        return False
    paginated = any(len(text) <= 12 and _PAGINATION.search(text) for text in link_texts)
    threshold = 0.25 if paginated else 0.4
    return sum(listing) / len(lines) >= threshold
