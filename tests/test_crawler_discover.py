"""URL normalisation and link discovery: pagination, articles, sitemaps, sitemap indexes, RSS and Atom."""
from __future__ import annotations

import asyncio

import pytest

from crawler import CrawlSettings, Fetcher, LinkRules, discover, document_kind, normalize_url
from tests.faultserver import FaultServer

RULES = LinkRules(
    allowed_hosts=("www.juredian.com", "www.juredian.net"),
    list_url_pattern=r"/list/\d+\.html$|[?&]page=\d+",
    article_url_pattern=r"/news/\d{8}/\d+\.html$",
)
BASE = "https://www.juredian.com/list/1.html"


# ---- normalize_url ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("HTTPS://WWW.Juredian.COM:443/news/20230512/1.html#comments", "https://www.juredian.com/news/20230512/1.html"),
        ("http://www.juredian.com:80/", "http://www.juredian.com/"),
        ("http://www.juredian.com:8080/a", "http://www.juredian.com:8080/a"),
        ("https://www.juredian.com", "https://www.juredian.com/"),
        ("https://www.juredian.com/hot/?utm_source=wx&utm_medium=x&spm=a.b.c&from=timeline&share_token=9&fbclid=1&gclid=2",
         "https://www.juredian.com/hot"),
        ("https://www.juredian.com/list?page=2&cat=5&utm_campaign=z", "https://www.juredian.com/list?cat=5&page=2"),
        ("https://www.juredian.com/a/./b/../c/", "https://www.juredian.com/a/c"),
        ("https://www.juredian.com/搜索?q=热点 新闻", "https://www.juredian.com/%E6%90%9C%E7%B4%A2?q=%E7%83%AD%E7%82%B9%20%E6%96%B0%E9%97%BB"),
        ("https://www.juredian.com/%e6%90%9c", "https://www.juredian.com/%E6%90%9C"),
    ],
)
def test_normalize_url(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected
    assert normalize_url(expected) == expected      # idempotent


@pytest.mark.parametrize("raw", ["javascript:void(0)", "mailto:editor@juredian.com", "tel:123", "ftp://x.org/a",
                                 "data:text/html,hi", "", "http://", "http://host:notaport/"])
def test_normalize_url_refuses_non_http(raw: str) -> None:
    assert normalize_url(raw, BASE) is None


def test_normalize_url_resolves_relative_links() -> None:
    assert normalize_url("../news/20230512/7.html", BASE) == "https://www.juredian.com/news/20230512/7.html"
    assert normalize_url("//www.juredian.net/x", BASE) == "https://www.juredian.net/x"
    assert normalize_url("?page=3", BASE) == "https://www.juredian.com/list/1.html?page=3"


# ---- HTML list pages -------------------------------------------------------------------------
LIST_PAGE = """<html><head><title>list</title><link rel="next" href="/list/2.html"></head><body>
<div class="list">
  <a href="/news/20230512/101.html">第一篇</a> <a href="/news/20230512/101.html#comments">评论</a>
  <a href="https://www.juredian.com/news/20230512/102.html?utm_source=wechat&from=groupmessage">第二篇</a>
  <a href="http://www.juredian.net:80/news/20230511/103.html">镜像站</a>
  <a href="https://evil.example.com/news/20230512/104.html">外站</a>
  <a href="/news/20230512/105.html?spm=1.2.3"> 第五 </a>
</div>
<div class="pager">首页 上一页 <a href="/list/1.html">1</a> <a href="/list/2.html">2</a> <a href="/list/3.html?share_from=x">3</a>
  <a href="/list/2.html">下一页</a> <a href="/list/9.html">尾页</a></div>
<a href="/about.html">关于</a> <a href="javascript:void(0)">x</a> <a href="mailto:a@b.c">mail</a> <a>no href</a>
</body></html>"""


def test_list_page_gives_pagination_and_articles_normalised_and_deduplicated() -> None:
    found = discover(LIST_PAGE, BASE, "text/html; charset=utf-8", RULES)
    assert found.article_urls == [
        "https://www.juredian.com/news/20230512/101.html",
        "https://www.juredian.com/news/20230512/102.html",
        "http://www.juredian.net/news/20230511/103.html",
        "https://www.juredian.com/news/20230512/105.html",
    ]
    assert found.list_urls == [
        "https://www.juredian.com/list/2.html",
        "https://www.juredian.com/list/3.html",
        "https://www.juredian.com/list/9.html",
    ]   # the page itself (/list/1.html) is left out; /about.html matches no pattern


def test_base_href_is_honoured() -> None:
    html = '<html><head><base href="https://www.juredian.com/news/20230512/"></head><body><a href="201.html">a</a></body></html>'
    found = discover(html, "https://www.juredian.com/list/4.html", "text/html", RULES)
    assert found.article_urls == ["https://www.juredian.com/news/20230512/201.html"]


def test_query_pagination_survives() -> None:
    html = '<a href="/hot?page=2">2</a><a href="/hot?page=3&utm_source=x">3</a><a href="/hot?page=2#top">2</a>'
    found = discover(html, "https://www.juredian.com/hot?page=1", "text/html", RULES)
    assert found.list_urls == ["https://www.juredian.com/hot?page=2", "https://www.juredian.com/hot?page=3"]


def test_no_patterns_means_nothing_from_html() -> None:
    rules = LinkRules(allowed_hosts=("www.juredian.com",), list_url_pattern=None, article_url_pattern=None)
    found = discover(LIST_PAGE, BASE, "text/html", rules)
    assert found.list_urls == [] and found.article_urls == []


# ---- sitemaps and feeds ----------------------------------------------------------------------
SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://www.juredian.com/news/20230512/301.html</loc><lastmod>2023-05-12</lastmod></url>
  <url><loc> https://www.juredian.com/news/20230512/302.html?utm_source=sitemap </loc></url>
  <url><loc>https://www.juredian.com/list/7.html</loc></url>
  <url><loc>https://www.juredian.com/about.html</loc></url>
  <url><loc>https://other.example.org/news/20230512/303.html</loc></url>
</urlset>"""

SITEMAP_INDEX = """<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://www.juredian.com/sitemap-news.xml</loc></sitemap>
  <sitemap><loc>https://www.juredian.net/sitemap-2.xml</loc></sitemap>
  <sitemap><loc>https://cdn.example.org/sitemap-3.xml</loc></sitemap>
</sitemapindex>"""

RSS = """<?xml version="1.0" encoding="gbk"?>
<rss version="2.0"><channel><title>聚热点</title><link>https://www.juredian.com/</link>
  <item><title>一</title><link>https://www.juredian.com/news/20230512/401.html</link></item>
  <item><title>二</title><link>https://www.juredian.com/news/20230512/402.html?from=rss</link><guid>x-402</guid></item>
  <item><title>三</title><guid isPermaLink="true">https://www.juredian.com/news/20230512/403.html</guid></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>聚热点</title>
  <link href="https://www.juredian.com/" rel="alternate"/>
  <entry><title>一</title><link rel="self" href="https://www.juredian.com/api/501"/>
         <link rel="alternate" type="text/html" href="https://www.juredian.com/news/20230512/501.html"/></entry>
  <entry><title>二</title><link href="/news/20230512/502.html"/></entry>
</feed>"""


def test_sitemap_entries_are_classified() -> None:
    found = discover(SITEMAP, "https://www.juredian.com/sitemap.xml", "application/xml", RULES)
    assert found.article_urls == [
        "https://www.juredian.com/news/20230512/301.html",
        "https://www.juredian.com/news/20230512/302.html",
    ]
    assert found.list_urls == ["https://www.juredian.com/list/7.html"]


def test_sitemap_without_article_pattern_takes_every_allowed_entry() -> None:
    rules = LinkRules(allowed_hosts=("www.juredian.com",), list_url_pattern=None, article_url_pattern=None)
    found = discover(SITEMAP, "https://www.juredian.com/sitemap.xml", "text/xml", rules)
    assert len(found.article_urls) == 4 and "https://www.juredian.com/about.html" in found.article_urls


def test_sitemap_index_children_are_list_urls() -> None:
    found = discover(SITEMAP_INDEX, "https://www.juredian.com/sitemap.xml", "application/xml", RULES)
    assert found.list_urls == ["https://www.juredian.com/sitemap-news.xml", "https://www.juredian.net/sitemap-2.xml"]
    assert found.article_urls == []


def test_rss_and_atom_items() -> None:
    rss = discover(RSS, "https://www.juredian.com/rss", "application/rss+xml", RULES)
    assert rss.article_urls == [
        "https://www.juredian.com/news/20230512/401.html",
        "https://www.juredian.com/news/20230512/402.html",
        "https://www.juredian.com/news/20230512/403.html",
    ]
    atom = discover(ATOM, "https://www.juredian.com/atom.xml", "application/atom+xml", RULES)
    assert atom.article_urls == [
        "https://www.juredian.com/news/20230512/501.html",
        "https://www.juredian.com/news/20230512/502.html",
    ]


def test_feeds_are_recognised_by_their_root_not_the_label() -> None:
    assert document_kind(RSS, "text/html") == "feed"
    assert document_kind(ATOM, None) == "feed"
    assert document_kind("<!-- x -->" + SITEMAP_INDEX.split("?>", 1)[1], "text/plain") == "sitemap"
    assert document_kind(LIST_PAGE, "text/html") == "html"
    assert document_kind('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"></html>', "application/xhtml+xml") == "html"


def test_broken_xml_does_not_raise() -> None:
    found = discover("<?xml version='1.0'?><urlset><url><loc>https://www.juredian.com/news/20230512/9.html</loc>",
                     "https://www.juredian.com/s.xml", "application/xml", RULES)
    assert found.article_urls == ["https://www.juredian.com/news/20230512/9.html"]


# ---- a feed fetched over HTTP, then discovered -----------------------------------------------
def test_gbk_feed_over_http_round_trip(fault_server: FaultServer) -> None:
    host = "127.0.0.1"
    feed = RSS.replace("https://www.juredian.com", fault_server.base_url)
    fault_server.page("/rss.xml", feed.encode("gbk"), "application/rss+xml")

    async def go():  # type: ignore[no-untyped-def]
        async with Fetcher(CrawlSettings(delay_seconds=0), (host,)) as f:
            return await f.fetch(fault_server.url("/rss.xml"))

    r = asyncio.run(go())
    assert r.ok and r.encoding == "gb18030" and "聚热点" in (r.text or "")
    rules = LinkRules((host,), None, r"/news/\d{8}/\d+\.html$")
    found = discover(r.text or "", r.final_url, r.content_type, rules)
    assert found.article_urls == [fault_server.url(f"/news/20230512/{n}.html") for n in (401, 402, 403)]


def test_gzipped_sitemap_over_http(fault_server: FaultServer) -> None:
    import gzip

    sitemap = SITEMAP.replace("https://www.juredian.com", fault_server.base_url)
    fault_server.page("/sitemap.xml.gz", gzip.compress(sitemap.encode()), "application/x-gzip")
    fault_server.page("/bomb.xml.gz", gzip.compress(b"<urlset>" + b" " * 3_000_000), "application/gzip")
    fault_server.page("/archive.gz", gzip.compress(b"data"), "application/gzip")

    async def go():  # type: ignore[no-untyped-def]
        async with Fetcher(CrawlSettings(delay_seconds=0, max_bytes=1_000_000), ("127.0.0.1",)) as f:
            return await asyncio.gather(*(f.fetch(fault_server.url(p)) for p in ("/sitemap.xml.gz", "/bomb.xml.gz", "/archive.gz")))

    ok, bomb, other = asyncio.run(go())
    assert ok.ok and ok.text and "<urlset" in ok.text
    found = discover(ok.text, ok.final_url, ok.content_type, LinkRules(("127.0.0.1",), None, r"/news/\d{8}/\d+\.html$"))
    assert found.article_urls == [fault_server.url("/news/20230512/301.html"), fault_server.url("/news/20230512/302.html")]
    assert bomb.error == "too_large"
    assert other.error == "not_html"
