"""Metadata read from the unpruned tree: title, author, account (公众号), site name, date.

Dates come only from places that describe this article: meta tags, WeChat's `var ct`, <time>
and info lines next to the title, and the info lines trimmed from the head of the text. Never
from links or list items, so a page without a date stays None (htmldate's sidebar mistake).
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass
from datetime import datetime

from selectolax.lexbor import LexborHTMLParser, LexborNode

from extractors.dates import from_unix, parse_date, parse_iso
from extractors.dom import class_words
from extractors.textrules import key as _key

__all__ = ["PageMeta", "read_meta", "clean_title", "date_from_lines"]

_TITLE_SEPARATORS = re.compile(r"\s+[-|–—_]\s+|[_|–—]|\s*-\s*(?=[^-]{1,16}$)")
_DATE_META = (
    'meta[property="article:published_time"]',
    'meta[name="article:published_time"]',
    'meta[itemprop="datePublished"]',
    'meta[name="pubdate"]',
    'meta[name="publishdate"]',
    'meta[name="PubDate"]',
    'meta[name="publish_date"]',
    'meta[name="date"]',
    'meta[property="og:release_date"]',
    'meta[name="dc.date"]',
    'meta[name="DC.date.issued"]',
    'meta[name="weibo: article:create_at"]',
)
_DATE_WORDS = frozenset(
    "time date pubtime pubdate publish published info meta source byline article-info post-meta entry-meta".split()
)
_AUTHOR = re.compile(r"(?:作者|文|撰文|记者)\s*[:：/|]\s*([^\s|｜/,，:：]{1,24})")
_BYLINE = re.compile(r"^By\s+([A-Z][\w.'-]+(?:\s+[A-Z][\w.'-]+){0,3})")
_ACCOUNT = re.compile(r"(?:来源|公众号|转载自|来自)\s*[:：|]\s*([^\s|｜/,，:：]{1,30})")
_WX_CT = re.compile(r"""var\s+ct\s*=\s*["'](\d{9,11})["']""")
_WX_TITLE = re.compile(r"""var\s+msg_title\s*=\s*["'](.{1,200}?)["']""")
_WX_NICK = re.compile(r"""var\s+nickname\s*=\s*(?:htmlDecode\()?["'](.{1,60}?)["']""")
# where the three can start: one scan of the page finds the first place (or that there is none,
# as on every page that is not WeChat's) instead of three scans
_WX_VARS = re.compile(r"var\s+(?:ct|msg_title|nickname)\s*=")
_SENTENCE = re.compile(r"[。！？]\s*[”」』)）]?$|[，,].{8,}[，,。]")
_INFO_HINT = re.compile(
    r"(来源|作者|发布|时间|日期|编辑|浏览|阅读|原创|Published|Updated|Posted|\bBy\b)", re.IGNORECASE
)


@dataclass(slots=True)
class PageMeta:
    title: str | None = None
    author: str | None = None
    account: str | None = None
    site_name: str | None = None
    published_at: datetime | None = None
    lang: str | None = None


_META_KEY = re.compile(r'meta\[(\w+)="([^"]+)"\]')


def _meta_index(tree: LexborHTMLParser) -> dict[tuple[str, str], str]:
    """Every <meta> once, (attribute, value) -> its content: the first such meta in the page, as
    css_first would find it, from one walk instead of one per selector."""
    index: dict[tuple[str, str], str] = {}
    for node in tree.css("meta"):
        attrs = node.attributes
        content = attrs.get("content")
        if content is None:
            continue
        for attr in ("property", "name", "itemprop"):
            value = attrs.get(attr)
            if value is not None:
                index.setdefault((attr, value), content)
    return index


def _meta(tree: LexborHTMLParser | dict[tuple[str, str], str], selector: str) -> str | None:
    if isinstance(tree, dict):
        found = _META_KEY.fullmatch(selector)
        content = tree.get((found.group(1), found.group(2))) if found else None
        value = (content or "").strip()
        return value or None
    node = tree.css_first(selector)
    if node is None:
        return None
    value = (node.attributes.get("content") or "").strip()
    return value or None


def _text(node: LexborNode | None) -> str:
    if node is None:
        return ""
    return " ".join(node.text(deep=True).split())


def clean_title(raw: str | None, site_name: str | None = None) -> str | None:
    """<title> minus the site suffix: "标题-聚热点网", "标题_聚热点", "Title | Site"."""
    if not raw:
        return None
    raw = " ".join(raw.split())
    if site_name and raw.endswith(site_name) and len(raw) > len(site_name) + 2:
        raw = raw[: -len(site_name)].rstrip(" -_|–—:：")
    parts = [p.strip() for p in _TITLE_SEPARATORS.split(raw) if p and p.strip()]
    if len(parts) <= 1:
        return raw or None
    return parts[0] if len(parts[0]) >= 4 else max(parts, key=len)


def _pick_title(
    tree: LexborHTMLParser, raw_html: str, site_name: str | None, metas: dict[tuple[str, str], str]
) -> tuple[str | None, LexborNode | None]:
    og = _meta(metas, 'meta[property="og:title"]') or _meta(metas, 'meta[name="twitter:title"]')
    head_title = clean_title(_text(tree.css_first("title")), site_name)
    wechat = _text(tree.css_first("#activity-name"))
    if not wechat:
        found = _WX_TITLE.search(raw_html)
        wechat = htmllib.unescape(found.group(1)).strip() if found else ""
    references = [_key(t) for t in (og, head_title, wechat) if t]
    first_good: tuple[str, LexborNode] | None = None
    for node in tree.css("h1")[:8]:
        text = _text(node)
        if not (2 <= len(text) <= 200):
            continue
        key = _key(text)
        if site_name and key == _key(site_name):
            continue
        if any(key and (key in ref or ref in key) for ref in references if ref):
            return text, node
        if first_good is None and node.css_first("a") is None:
            first_good = (text, node)
    if wechat:
        return wechat, tree.css_first("#activity-name")
    if og:
        return " ".join(og.split()), None
    if first_good is not None and not head_title:
        return first_good
    if head_title:
        return head_title, first_good[1] if first_good else None
    return None, None


def _info_near(title_node: LexborNode | None) -> list[str]:
    """Short texts right after the title: the portal info line (时间/来源/作者)."""
    if title_node is None:
        return []
    found: list[str] = []
    node = title_node
    for _ in range(2):  # the title's siblings, then its parent's siblings
        sibling = node.next
        steps = 0
        while sibling is not None and steps < 6:
            if sibling.is_element_node:
                steps += 1
                text = _text(sibling)
                if text and len(text) <= 160:
                    found.append(text)
                elif len(text) > 160:
                    break
            sibling = sibling.next
        if found or node.parent is None:
            break
        node = node.parent
    return found


def date_from_lines(lines: list[str] | tuple[str, ...], tz_name: str, fetched_at: datetime | None) -> datetime | None:
    """A date in info-like lines: short, not a sentence, and either mostly a date or naming
    来源/作者/发布 ("市交通委员会昨天发布消息,……。" is news, not an info line)."""
    for line in lines:
        if len(line) > 120 or (len(line) > 30 and _SENTENCE.search(line)):
            continue
        value = parse_date(line, tz_name=tz_name, fetched_at=fetched_at)
        if value is None:
            continue
        stripped = re.sub(r"[\d\s年月日:：\-/.]", "", line)
        if _INFO_HINT.search(line) or len(stripped) <= 12:
            return value
    return None


def read_meta(tree: LexborHTMLParser, raw_html: str, *, tz_name: str, fetched_at: datetime | None) -> PageMeta:
    """Title, author, account, site name and (machine-readable or info-line) date of the page."""
    meta = PageMeta()
    wx = _WX_VARS.search(raw_html)
    raw_html = raw_html[wx.start() :] if wx is not None else ""  # no WeChat variable before this
    metas = _meta_index(tree)
    meta.site_name = _meta(metas, 'meta[property="og:site_name"]') or _meta(metas, 'meta[name="application-name"]')
    html_node = tree.css_first("html")
    if html_node is not None:
        meta.lang = (html_node.attributes.get("lang") or "").strip() or None
    title, title_node = _pick_title(tree, raw_html, meta.site_name, metas)
    meta.title = title

    author = _meta(metas, 'meta[name="author"]') or _meta(metas, 'meta[property="article:author"]')
    if author and author.startswith("http"):
        author = None
    wx_author = _text(tree.css_first("#js_author_name"))
    meta.author = wx_author or author
    account = _text(tree.css_first("#js_name"))
    if not account:
        found = _WX_NICK.search(raw_html)
        account = htmllib.unescape(found.group(1)).strip() if found else ""
    meta.account = account or None

    info = _info_near(title_node)
    for line in info:
        if meta.author is None:
            found = _AUTHOR.search(line) or _BYLINE.search(line)
            if found:
                meta.author = found.group(1)
        if meta.account is None:
            found = _ACCOUNT.search(line)
            if found:
                meta.account = found.group(1)

    published: datetime | None = None
    for selector in _DATE_META:
        value = _meta(metas, selector)
        if value:
            published = parse_iso(value, tz_name)
            if published is not None:
                break
    if published is None:
        found = _WX_CT.search(raw_html)
        if found:
            published = from_unix(found.group(1))
    if published is None:
        node = tree.css_first("#publish_time")
        if node is not None:
            published = parse_date(_text(node), tz_name=tz_name, fetched_at=fetched_at)
    if published is None:
        published = date_from_lines(info, tz_name, fetched_at)
    if published is None and title_node is not None:
        published = _date_from_time_elements(title_node, tz_name, fetched_at)
    meta.published_at = published
    return meta


def _date_from_time_elements(title_node: LexborNode, tz_name: str, fetched_at: datetime | None) -> datetime | None:
    """<time> or a date-classed element inside the title's container (not in links or lists)."""
    container = title_node.parent
    if container is None:
        return None
    for node in container.css("time, span, div, p, em"):
        if node.css_first("a") is not None:
            continue
        words = class_words(node)
        if node.tag != "time" and not (words & _DATE_WORDS):
            continue
        parent = node.parent
        in_list = False
        while parent is not None and parent.mem_id != container.mem_id:
            if parent.tag in ("li", "a"):
                in_list = True
                break
            parent = parent.parent
        if in_list:
            continue
        value = parse_iso(node.attributes.get("datetime") or "", tz_name) if node.tag == "time" else None
        if value is None:
            text = _text(node)
            if len(text) <= 120:
                value = parse_date(text, tz_name=tz_name, fetched_at=fetched_at)
        if value is not None:
            return value
    return None
