"""Link discovery: which URLs a fetched list page, sitemap or feed points to, sorted into list pages
(to follow: pagination, child sitemaps) and article pages (to extract).

HTML is parsed with selectolax (lexbor); sitemaps and feeds with lxml in recover mode, without
entities or network. Which one is decided by the content type and, since servers mislabel feeds, by
the document's first element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from crawler.urls import HostRules, normalize_url

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser

FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})
_FIRST_ELEMENT = re.compile(r"<(?![?!/])\s*(?:[\w.-]+:)?([\w.-]+)")
_PROLOGUE = re.compile(r"<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>]*>", re.S | re.I)


@dataclass(frozen=True)
class LinkRules:
    allowed_hosts: tuple[str, ...]
    list_url_pattern: str | None = None
    article_url_pattern: str | None = None


@dataclass
class Discovered:
    list_urls: list[str] = field(default_factory=list)
    article_urls: list[str] = field(default_factory=list)


@lru_cache(maxsize=64)
def _compiled(rules: LinkRules) -> tuple[HostRules, re.Pattern[str] | None, re.Pattern[str] | None]:
    return (
        HostRules(rules.allowed_hosts),
        re.compile(rules.list_url_pattern) if rules.list_url_pattern else None,
        re.compile(rules.article_url_pattern) if rules.article_url_pattern else None,
    )


def document_kind(text: str, content_type: str | None = None) -> str:
    """ "html", "sitemap" or "feed", from the first element: servers label feeds text/html or text/plain."""
    head = _PROLOGUE.sub("", text[:4096])
    match = _FIRST_ELEMENT.search(head)
    if match is not None:
        root = match.group(1).lower()
        if root in SITEMAP_ROOTS:
            return "sitemap"
        if root in FEED_ROOTS:
            return "feed"
    return "html"


def discover(text: str, base_url: str, content_type: str | None, rules: LinkRules) -> Discovered:
    """Links on a page, normalised, on allowed hosts, de-duplicated, in page order, sorted by the patterns.

    HTML: `<a href>`, `<area href>` and `<link rel=next>`, resolved against `<base href>`; a link is an
    article if it matches article_url_pattern, else a list page if it matches list_url_pattern, else
    ignored. Sitemaps: `<url><loc>` entries are classified the same way; `<sitemap><loc>` (a sitemap
    index) are list URLs. Feeds (RSS 0.9x/1.0/2.0, Atom): item links. A sitemap or feed entry that matches
    neither pattern counts as an article when there is no article pattern. The page itself is left out.
    """
    kind = document_kind(text, content_type)
    always_list: list[str]
    if kind == "html":
        raw, always_list, fallback_article = _html_links(text, base_url), [], False
    else:
        raw, always_list = _xml_links(text, kind)
        fallback_article = True
    return _classify(raw, always_list, base_url, rules, fallback_article)


def _classify(
    raw: list[str], always_list: list[str], base_url: str, rules: LinkRules, fallback_article: bool
) -> Discovered:
    hosts, list_re, article_re = _compiled(rules)
    found = Discovered()
    seen: set[str] = set()
    own = normalize_url(base_url)
    if own:
        seen.add(own)
    for href in always_list:
        url = normalize_url(href, base_url)
        if url and url not in seen and hosts.allows_url(url):
            seen.add(url)
            found.list_urls.append(url)
    for href in raw:
        url = normalize_url(href, base_url)
        if not url or url in seen or not hosts.allows_url(url):
            continue
        if article_re is not None and article_re.search(url):
            found.article_urls.append(url)
        elif list_re is not None and list_re.search(url):
            found.list_urls.append(url)
        elif fallback_article and article_re is None:
            found.article_urls.append(url)
        else:
            continue
        seen.add(url)
    return found


def _html_links(text: str, base_url: str) -> list[str]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    base = tree.css_first("base[href]")
    if base is not None:
        href = (base.attributes.get("href") or "").strip()
        if href:
            resolved = urljoin(base_url, href)  # not normalised: its trailing slash matters for joining
            if resolved.startswith(("http://", "https://")):
                # the <base> resolves links; the page's own URL is still base_url for the self-link check
                return [normalize_url(h, resolved) or "" for h in _hrefs(tree)]
    return _hrefs(tree)


def _hrefs(tree: LexborHTMLParser) -> list[str]:
    out: list[str] = []
    for node in tree.css("a[href], area[href], link[href]"):
        if node.tag == "link":
            rel = (node.attributes.get("rel") or "").lower().split()
            if "next" not in rel and "prev" not in rel:
                continue
        href = node.attributes.get("href")
        if href:
            out.append(href.strip())
    return out


def _xml_links(text: str, kind: str) -> tuple[list[str], list[str]]:
    """(entries, child sitemaps) of a sitemap or feed. Namespaces are ignored: feeds mix them freely."""
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    data = text.encode("utf-8")
    if text.lstrip("\ufeff \t\r\n").startswith("<?xml"):  # the declared encoding no longer applies: drop it
        data = re.sub(rb"^\s*<\?xml[^>]*\?>", b"", data.lstrip(b"\xef\xbb\xbf"), count=1)
    root = etree.fromstring(data, parser)
    if root is None:
        return [], []
    entries: list[str] = []
    children: list[str] = []
    if kind == "sitemap":
        for el in root.iter():
            if not isinstance(el.tag, str) or etree.QName(el).localname != "loc" or not el.text:
                continue
            parent = el.getparent()
            parent_name = etree.QName(parent).localname if parent is not None else ""
            (children if parent_name == "sitemap" else entries).append(el.text.strip())
        return entries, children
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = etree.QName(el).localname
        if name not in ("item", "entry"):
            continue
        link = _item_link(el)
        if link:
            entries.append(link)
    return entries, children


def _item_link(item: Any) -> str | None:  # an lxml element (lxml is untyped here)
    from lxml import etree

    alternate = None
    first_href = None
    guid = None
    rdf_about = None
    for attr, value in item.attrib.items():
        if etree.QName(attr).localname == "about":
            rdf_about = value
    for child in item:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if name == "link":
            href = child.get("href")
            if href:  # Atom
                rel = child.get("rel", "alternate")
                if rel == "alternate" and alternate is None:
                    alternate = href
                first_href = first_href or href
            elif child.text and child.text.strip():  # RSS
                return child.text.strip()
        elif name == "guid" and child.text and child.get("isPermaLink", "true").lower() == "true":
            guid = child.text.strip()
    return alternate or first_href or (guid if guid and guid.startswith(("http://", "https://")) else None) or rdf_about
