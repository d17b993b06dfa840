"""extract(): one page in, one Article or Rejection out. Reads top to bottom as the cascade runs.

    parse once (lexbor) → metadata from the whole page (title, author, account, date)
    → prune: non-content tags and form controls, genre selectors, GNE class/id words, the source's
      drop_selectors (layout wrappers and the densest text block are protected)
    → the page as lines (lines.py), with the densest block's span
    → candidates (blocks.py): a known container (source content_selector, WeChat #js_content); else
      the density block and trafilatura (favor_recall, fast) on the region around it; choose.py
      picks one and bounds trafilatura's lines by the density block's span
    → text rules at head and tail (capped at a third); when they leave nothing, the other candidate
    → reject: too short, list pages → content hash, simhash

Pure and deterministic: no I/O, no clock (relative dates need `fetched_at`), never raises (a bug
is a Rejection "internal_error", logged with its traceback). `trace` records the decisions.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TypedDict

from selectolax.lexbor import LexborHTMLParser, LexborNode

from extractors.blocks import MIN_ARTICLE_CHARS, main_blocks
from extractors.dedup import hash_keys
from extractors.density import Candidate, best_container
from extractors.dom import class_words, prune
from extractors.genre import CompiledRules, compiled, genre_digest
from extractors.lines import real_links
from extractors.listpage import MIN_HEADLINES, headline_links, looks_like_list
from extractors.metadata import date_from_lines, read_meta
from extractors.model import Article, Rejection, Rules
from extractors.region import MAX_TRAFILATURA_NODES
from extractors.textrules import TrimResult, apply_text_rules, link_key
from extractors.trace import Trace
from outcomes import INTERNAL_ERROR

__all__ = ["extract", "EXTRACTOR_VERSION", "rules_version"]

EXTRACTOR_VERSION = "2026.12.01-2"

MAX_TAGS = 100_000  # a page is read up to its 100,000th tag (real pages have a few thousand)
_TAG = re.compile("<")
_log = logging.getLogger("sieve.extract")


def rules_version(rules: Rules | None) -> str:
    """Hash of the global genre rules plus the source's rules."""
    own = rules.version if rules is not None else "none"
    return f"{genre_digest()}-{own}"


def extract(
    html: str, url: str, rules: Rules | None = None, *, fetched_at: datetime | None = None, trace: Trace | None = None
) -> Article | Rejection:
    """Clean one decoded page. Never raises: a bug comes back as Rejection(reason="internal_error")."""
    try:
        return _extract(html, url, rules, fetched_at, trace)
    except Exception as exc:  # robustness contract: a bad page is a row, not a crash
        _log.exception("extraction failed on %s", url)
        return Rejection(
            url=url,
            reason=INTERNAL_ERROR,
            detail=f"{type(exc).__name__}: {exc}"[:300],
            extractor_version=EXTRACTOR_VERSION,
            rules_version=_safe_rules_version(rules),
        )


def _safe_rules_version(rules: Rules | None) -> str:
    try:
        return rules_version(rules)
    except Exception:
        return ""


class _Versions(TypedDict):
    """What every Article and Rejection carries, passed as **versions."""

    extractor_version: str
    rules_version: str


def _extract(
    html: str, url: str, rules: Rules | None, fetched_at: datetime | None, trace: Trace | None
) -> Article | Rejection:
    versions = _Versions(extractor_version=EXTRACTOR_VERSION, rules_version=rules_version(rules))
    if not isinstance(html, str):
        return Rejection(url=url, reason="empty", detail=f"not text: {type(html).__name__}", **versions)
    if not html.strip():
        return Rejection(url=url, reason="empty", **versions)
    if "\x00" in html:  # a scan; replace() would also build a copy of the page
        html = html.replace("\x00", "")
    cr = compiled(rules)
    html, truncated = _bounded(html)
    if truncated and trace is not None:
        trace.step("bounds", f"more than {MAX_TAGS} tags: the page is read up to its {MAX_TAGS}th tag")

    # 1. parse once; metadata reads the whole page before anything is removed
    tree = LexborHTMLParser(html)
    if tree.body is None:
        return Rejection(url=url, reason="empty", detail="no body", **versions)
    meta = read_meta(tree, html, tz_name=cr.timezone, fetched_at=fetched_at)

    # 2. prune genre chrome and the source's drop_selectors, protecting the densest block
    densest: list[Candidate | None] = []
    links: list[frozenset[int]] = []
    anchor_texts: dict[int, str] = {}
    garbage: list[str] = []

    def keep_densest(pruned: LexborHTMLParser, marked: list[LexborNode]):
        if pruned.body is None:
            return None
        text = pruned.body.text(deep=True)
        why = _garbage(text)
        if why:  # not text at all: nothing to protect, rejected below
            garbage.append(why)
            return None
        links.append(real_links(pruned.body, anchor_texts))  # which anchors are links: decided once
        candidate = _densest(pruned, cr, links[0], text, marked)
        densest.append(candidate)
        return candidate.node if candidate else None

    on_remove = None
    if trace is not None:
        on_remove = lambda rule, node: trace.remove("prune", rule, node.text(deep=True).strip())  # noqa: E731

    def text_size(node):
        return densest[0].size(node) if densest and densest[0] is not None else None

    prune(tree, cr.drop_selectors, cr.class_words, keep=keep_densest, on_remove=on_remove, text_size=text_size)
    if garbage:
        return Rejection(url=url, reason="undecodable", detail=garbage[0], **versions)
    body = tree.body
    if body is None:
        return Rejection(url=url, reason="empty", detail="nothing left after pruning", **versions)
    candidate = densest[0] if densest else None

    # 3. candidates and the choice; the runner-up is kept for when text rules empty the winner
    real = links[0] if links else real_links(body, anchor_texts)
    link_texts = [" ".join(anchor_texts[node.mem_id].split()) for node in tree.css("a") if node.mem_id in real]
    keyed = list(map(link_key, link_texts))
    link_keys = frozenset(k for k in keyed if len(k) >= 4)
    blocks = main_blocks(tree, url, cr, candidate, meta.title, trace, real)
    trimmed = TrimResult([])
    method = "none"
    for number, block in enumerate(blocks):
        trimmed = apply_text_rules(block.lines, cr, meta.title, link_keys, block.shares)
        method = block.name
        if trace is not None:
            for rule, line in trimmed.removed:
                trace.remove("rules", rule, line)
        if len("".join("".join(trimmed.lines).split())) >= MIN_ARTICLE_CHARS:
            if number and trace is not None:
                trace.choose(block.name, "the text rules left too little of the first choice")
            break
    text = "\n".join(trimmed.lines)
    flags = list(trimmed.flags)
    if truncated:
        flags.append("truncated")
    if method != "trafilatura":
        flags.append(f"via_{method}")

    # 4. not an article: a page of headlines, or too little left
    content_chars = len("".join(text.split()))
    if content_chars < MIN_ARTICLE_CHARS:
        if headline_links(link_texts) >= MIN_HEADLINES:
            return Rejection(
                url=url,
                reason="list_page",
                detail="headline links, no article text",
                **versions,
                meta={"title": meta.title},
            )
        return Rejection(
            url=url, reason="too_short", detail=f"{content_chars} chars", **versions, meta={"title": meta.title}
        )
    if looks_like_list(link_texts, trimmed.lines, cr, keyed):
        return Rejection(url=url, reason="list_page", **versions, meta={"title": meta.title})

    published = meta.published_at
    if published is None:
        published = date_from_lines(trimmed.head_removed + trimmed.lines[:1], cr.timezone, fetched_at)
    digest, near = hash_keys(text)

    return Article(
        url=url,
        title=meta.title,
        text=text,
        author=meta.author,
        account=meta.account,
        published_at=published,
        site_name=meta.site_name,
        lang=meta.lang,
        content_hash=digest,
        simhash=near,
        flags=tuple(sorted(set(flags))),
        **versions,
    )


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_LETTER = re.compile(r"[^\W\d_]")


def _bounded(html: str) -> tuple[str, bool]:
    """The page cut after MAX_TAGS tags, so every later stage (parse, density, lines) is linear in a
    bounded size; counted in C (str.count), so an ordinary page pays nothing."""
    if len(html) <= MAX_TAGS or html.count("<") <= MAX_TAGS:
        return html, False
    for number, match in enumerate(_TAG.finditer(html), start=1):
        if number > MAX_TAGS:
            return html[: match.start()], True
    return html, False


def _garbage(text: str) -> str | None:
    """The page's visible text is not text: mostly replacement or control characters (bytes read
    with the wrong codec, or no text at all), or no letter of any script in a long text."""
    bad = len(_CONTROL.findall(text))
    if bad > 0.25 * len(text) and bad >= 20:
        return f"{bad} of {len(text)} visible characters are replacement or control characters"
    if len(text) >= 200 and not _LETTER.search(text):
        return "no letters of any script"
    return None


def _densest(
    tree: LexborHTMLParser, cr: CompiledRules, links: frozenset[int], text: str, marked: list[LexborNode]
) -> Candidate | None:
    """The density candidate; comment threads (class/id words) do not count. `marked` are the
    nodes whose class/id words are chrome or comment words (dom.worded): the comment words are
    among them."""
    body = tree.body
    if body is None:
        return None
    hidden = (
        frozenset(node.mem_id for node in marked if class_words(node) & cr.hidden_words)
        if cr.hidden_words
        else frozenset()
    )
    return best_container(body, cr.notice, hidden, links, text, count_above=MAX_TRAFILATURA_NODES)
