"""Trust boundaries (issue 13): robots.txt redirects obey the same host rules as page redirects, and
credentials in a link or a Location never become an Authorization header."""
from __future__ import annotations

import asyncio

from crawler import CrawlSettings, Fetcher, FetchResult, LinkRules, discover, normalize_url
from tests.faultserver import FaultServer


def settings(**overrides: object) -> CrawlSettings:
    base: dict[str, object] = dict(delay_seconds=0.0, timeout_seconds=2.0, retries=0)
    base.update(overrides)
    return CrawlSettings(**base)


def fetch(urls: list[str], allowed: tuple[str, ...] | None = ("127.0.0.1",)) -> list[FetchResult]:
    async def go() -> list[FetchResult]:
        async with Fetcher(settings(), allowed) as fetcher:
            return [await fetcher.fetch(u) for u in urls]

    return asyncio.run(go())


# ---- robots.txt redirects --------------------------------------------------------------------
def test_robots_redirect_off_the_allowed_hosts_is_not_followed(fault_server: FaultServer) -> None:
    with FaultServer("127.0.0.2") as elsewhere:
        elsewhere.robots("User-agent: *\nAllow: /\n")
        fault_server.redirect("/robots.txt", elsewhere.url("/robots.txt"))
        page = fault_server.page("/a.html", "<html>a</html>")
        [r] = fetch([page])
        assert elsewhere.records == []                      # not even one blind request
    assert r.error == "unreachable" and "offsite_redirect" in r.detail and "127.0.0.2" in r.detail
    assert fault_server.paths() == ["/robots.txt"]          # and the host is not crawled without its rules


def test_robots_redirect_to_another_spelling_of_loopback_is_refused(fault_server: FaultServer) -> None:
    # issue 13's case: `http://127.1:PORT/` is 127.0.0.1 to the OS, but not a host the source allows
    fault_server.redirect("/robots.txt", f"http://127.1:{fault_server.port}/elsewhere.txt")
    [r] = fetch([fault_server.page("/a.html", "<html>a</html>")])
    assert r.error == "unreachable" and "offsite_redirect" in r.detail
    assert "/elsewhere.txt" not in fault_server.paths()


def test_robots_redirect_on_the_same_host_is_followed(fault_server: FaultServer) -> None:
    fault_server.redirect("/robots.txt", "/real-robots.txt", 301)
    fault_server.page("/real-robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    ok, banned = fetch([fault_server.page("/a.html", "<html>a</html>"), fault_server.page("/private/b.html", "<html>b</html>")])
    assert ok.ok and banned.error == "robots"
    assert "/private/b.html" not in fault_server.paths()


# ---- credentials -----------------------------------------------------------------------------
def test_normalisation_drops_credentials() -> None:
    assert normalize_url("http://user:secret@Example.com:80/a?b=1#f") == "http://example.com/a?b=1"
    assert normalize_url("https://token@example.com/x") == "https://example.com/x"
    assert normalize_url("/x", "http://u:p@example.com/list") == "http://example.com/x"


def test_discovered_links_carry_no_credentials_and_none_are_sent(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nAllow: /\n")
    host = fault_server.host
    fault_server.page("/news/1.html", "<html><body>one</body></html>")
    listing = f'<html><body><a href="http://admin:hunter2@{host}/news/1.html">1</a></body></html>'
    rules = LinkRules(("127.0.0.1",), None, r"/news/\d+\.html$")
    found = discover(listing, fault_server.url("/list.html"), "text/html", rules)
    assert found.article_urls == [fault_server.url("/news/1.html")]
    [r] = fetch(found.article_urls)
    assert r.ok
    assert all("authorization" not in rec.headers for rec in fault_server.records)


def test_redirect_location_with_credentials_sends_none(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nAllow: /\n")
    fault_server.redirect("/go.html", f"http://admin:hunter2@{fault_server.host}/landing.html")
    fault_server.page("/landing.html", "<html>landed</html>")
    [r] = fetch([fault_server.url("/go.html")])
    assert r.ok and r.final_url == fault_server.url("/landing.html")
    assert all("authorization" not in rec.headers for rec in fault_server.records)


def test_credentials_in_a_url_given_to_fetch_are_not_sent(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nAllow: /\n")
    fault_server.page("/a.html", "<html>a</html>")
    [r] = fetch([f"http://admin:hunter2@{fault_server.host}/a.html"], allowed=None)   # as `sieve extract URL` does
    assert r.ok and r.final_url == fault_server.url("/a.html")
    assert fault_server.paths() == ["/robots.txt", "/a.html"]
    assert all("authorization" not in rec.headers for rec in fault_server.records)
