"""A whole small hostile site crawled with the crawler API alone (fetch + discover, a set as frontier):
every good article is fetched exactly once, every fault is recorded with its reason, the disallowed
URL is never requested and the per-host limit holds. The warehouse-backed frontier is the flows' job;
this proves the crawler's half of issue 3's "done when"."""
from __future__ import annotations

import asyncio

from crawler import CrawlSettings, Fetcher, FetchResult, LinkRules, discover, normalize_url
from tests.faultserver import FaultServer

ARTICLE = "<html><head><meta charset='gbk'><title>{n}</title></head><body><h1>第{n}篇</h1><p>朱镕基 陶喆 {n}</p></body></html>"


def build_site(s: FaultServer) -> dict[str, str]:
    """Three list pages (pagination), good articles in UTF-8 and GBK, and one article per fault."""
    expected: dict[str, str] = {}
    good = list(range(1, 13))
    for n in good:
        body = ARTICLE.format(n=n)
        if n % 2:
            s.page(f"/news/{n}.html", body.encode("gbk"), "text/html")           # meta charset only
        else:
            s.page(f"/news/{n}.html", body.replace("gbk", "utf-8"))              # utf-8 header
        expected[s.url(f"/news/{n}.html")] = f"朱镕基 陶喆 {n}"
    s.status_sequence("/news/13.html", [500, 200], ARTICLE.format(n=13))
    expected[s.url("/news/13.html")] = "朱镕基 陶喆 13"
    s.throttled("/news/14.html", 0.05, body=ARTICLE.format(n=14))
    expected[s.url("/news/14.html")] = "朱镕基 陶喆 14"
    s.redirect("/news/15.html", "/news/12.html", 301)                         # on-site: lands on a known page
    faults = {
        "/news/90.html": "timeout",
        "/news/91.html": "too_large",
        "/news/92.html": "not_html",
        "/news/93.html": "offsite_redirect",
        "/news/94.html": "http_4xx",
        "/news/95.html": "connection",
        "/news/96.html": "http_5xx",
        "/news/97.html": "robots",
    }
    s.slow("/news/90.html", 5)
    s.huge("/news/91.html", 50_000_000, declare_length=False)
    s.page("/news/92.html", b"%PDF-1.4", "application/pdf")
    s.redirect("/news/93.html", "http://198.51.100.7/elsewhere.html")
    s.status_sequence("/news/94.html", [404])
    s.reset_mid_body("/news/95.html")
    s.status_sequence("/news/96.html", [503])
    s.page("/news/97.html", ARTICLE.format(n=97))
    s.robots("User-agent: *\nDisallow: /news/97.html\n")

    links = [f"/news/{n}.html" for n in [*good, 13, 14, 15]] + list(faults)
    pages = [links[0:7], links[7:16], links[16:]]
    for i, chunk in enumerate(pages, start=1):
        items = "".join(f'<li><a href="{href}?utm_source=list#c">{href}</a></li>' for href in chunk)
        pager = "".join(f'<a href="/list/{j}.html">{j}</a>' for j in range(1, len(pages) + 1))
        s.page(f"/list/{i}.html", f"<html><body><ul>{items}</ul><div class=pager>{pager}</div></body></html>")
    return expected | {s.url(p): f"!{kind}" for p, kind in faults.items()}


async def crawl(start: str, rules: LinkRules, settings: CrawlSettings) -> dict[str, FetchResult]:
    seen = {start}
    todo = [start]
    results: dict[str, FetchResult] = {}
    async with Fetcher(settings, rules.allowed_hosts) as fetcher:
        while todo:
            batch, todo = todo, []
            for r in await asyncio.gather(*(fetcher.fetch(u) for u in batch)):
                results[r.url] = r
                if r.ok and r.text:
                    found = discover(r.text, r.final_url, r.content_type, rules)
                    for u in found.list_urls + found.article_urls:
                        if u not in seen:
                            seen.add(u)
                            todo.append(u)
    return results


def test_hostile_site_crawl(fault_server: FaultServer) -> None:
    expected = build_site(fault_server)
    rules = LinkRules(("127.0.0.1",), r"/list/\d+\.html$", r"/news/\d+\.html$")
    settings = CrawlSettings(
        user_agent="sieve-test/1.0", delay_seconds=0.0, per_host_concurrency=3, concurrency=8,
        timeout_seconds=0.5, retries=1, backoff_base_seconds=0.02, max_bytes=100_000,
    )
    start = normalize_url(fault_server.url("/list/1.html"))
    assert start is not None
    results = asyncio.run(crawl(start, rules, settings))

    for url, want in expected.items():
        r = results[url]
        if want.startswith("!"):
            assert r.error == want[1:], (url, r.error, r.detail)
            assert r.text is None
        else:
            assert r.ok and want in (r.text or ""), (url, r.error)
            if not url.endswith("/news/12.html"):   # 12 is also /15's redirect target
                assert len(fault_server.requests_for(url.replace(fault_server.base_url, ""))) == r.attempts
    assert results[fault_server.url("/news/15.html")].final_url == fault_server.url("/news/12.html")
    assert results[fault_server.url("/list/3.html")].ok

    paths = fault_server.paths()
    assert all(paths.count(f"/news/{n}.html") == 1 for n in range(1, 12))   # each good article once
    assert paths.count("/news/12.html") == 2                                 # itself, and as /15's redirect target
    assert paths.count("/robots.txt") == 1
    assert "/news/97.html" not in fault_server.paths()
    assert not any("utm_source" in p for p in fault_server.paths())
    assert fault_server.max_in_flight <= 3
    assert all(rec.user_agent == "sieve-test/1.0" for rec in fault_server.records)
