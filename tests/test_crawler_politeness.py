"""Politeness under many concurrent fetch() calls, judged by the server's own records: per-host and global
in-flight caps, per-host spacing, robots.txt (disallow, Crawl-delay, once per host, UA, off switch)."""
from __future__ import annotations

import asyncio
import sys

import pytest

from crawler import CrawlSettings, Fetcher, FetchResult
from tests.faultserver import FaultHandler, FaultServer, RequestRecord

UA = "sieve-test/1.0 (+http://example.invalid/bot)"
TRANSPORT = "aiohttp"   # the default; tests marked `both_transports` run on httpx's own transport too


@pytest.fixture
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys.modules[__name__], "TRANSPORT", request.param)
    return request.param


# Limits and spacing depend on the transport (when a request is "sent" is its hook); robots.txt logic does not.
both_transports = pytest.mark.parametrize("transport", ["aiohttp", "httpx"], indirect=True)


def settings(**overrides: object) -> CrawlSettings:
    base: dict[str, object] = dict(
        transport=TRANSPORT,        user_agent=UA, delay_seconds=0.0, timeout_seconds=3.0, retries=1,
        backoff_base_seconds=0.02, backoff_max_seconds=0.1, concurrency=16, per_host_concurrency=2,
    )
    base.update(overrides)
    return CrawlSettings(**base)


def fetch_urls(urls: list[str], allowed: tuple[str, ...] | None = ("127.0.0.1", "127.0.0.2"), **kw: object) -> tuple[list[FetchResult], Fetcher]:
    async def go() -> tuple[list[FetchResult], Fetcher]:
        async with Fetcher(settings(**kw), allowed) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(u) for u in urls))), fetcher

    return asyncio.run(go())


def slow_pages(server: FaultServer, n: int, seconds: float = 0.04, prefix: str = "/p") -> list[str]:
    def handler(h: FaultHandler) -> None:
        h.wait(seconds)
        h.send_body(200, f"<html><body>{h.path}</body></html>")

    urls = []
    for i in range(n):
        server.route(f"{prefix}{i}.html", handler)
        urls.append(server.url(f"{prefix}{i}.html"))
    return urls


def assert_spaced(gaps: list[float], delay: float) -> None:
    """The client spaces request *starts*; the server sees arrivals, which jitter on a busy machine (thread
    wake-ups, a new connection's handshake, the test process descheduled right after a send). Jitter only
    ever makes an arrival *later*: a request recorded late by j leaves the gap before it j too long and the
    gap after it j too short. So one short gap passes when the gap before it is long by as much (one:
    pairs sent back to back every other slot would pass the rule every time); without spacing every gap
    would be ~1 ms and fail."""
    assert gaps, "no gaps to judge"
    slack = 0.03
    short = [i for i, gap in enumerate(gaps) if gap < delay - slack]
    assert len(short) <= 1, gaps
    for i in short:
        assert i > 0 and gaps[i - 1] + gaps[i] >= 2 * delay - slack, (i, gaps)
    assert sum(gaps) / len(gaps) >= delay * 0.97, gaps


def max_overlap(records: list[RequestRecord]) -> int:
    events = sorted([(r.started, 1) for r in records] + [(r.finished or r.started, -1) for r in records],
                    key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


# ---- concurrency -----------------------------------------------------------------------------
@both_transports
def test_per_host_limit_holds_under_a_large_gather(fault_server: FaultServer, transport: str) -> None:
    urls = slow_pages(fault_server, 60)
    results, fetcher = fetch_urls(urls, per_host_concurrency=3, concurrency=20)
    assert all(r.ok for r in results)
    assert fault_server.max_in_flight == 3          # reached, never exceeded
    assert max(rec.in_flight for rec in fault_server.records) <= 3
    assert fetcher.stats.max_in_flight_by_host[fault_server.host] == 3
    assert fetcher.stats.requests_by_host[fault_server.host] == 61   # 60 pages + robots.txt


@both_transports
def test_global_limit_holds_across_hosts(fault_server: FaultServer, transport: str) -> None:
    with FaultServer("127.0.0.2") as other:
        urls = slow_pages(fault_server, 20) + slow_pages(other, 20)
        results, fetcher = fetch_urls(urls, per_host_concurrency=4, concurrency=3)
        assert all(r.ok for r in results)
        combined = fault_server.records + other.records
        assert max_overlap(combined) <= 3
        assert fetcher.stats.max_in_flight == 3
        assert fault_server.max_in_flight <= 3 and other.max_in_flight <= 3


@both_transports
def test_delay_between_requests_to_one_host(fault_server: FaultServer, transport: str) -> None:
    fault_server.robots("User-agent: *\nAllow: /\n")
    urls = [fault_server.page(f"/d{i}.html", "<html>d</html>") for i in range(8)]
    results, _ = fetch_urls(urls, delay_seconds=0.1, per_host_concurrency=4)
    assert all(r.ok for r in results)
    gaps = fault_server.start_gaps()
    assert len(gaps) == 8                           # robots.txt + 8 pages
    assert_spaced(gaps, 0.1)


@both_transports
def test_delay_is_per_host_not_global(fault_server: FaultServer, transport: str) -> None:
    with FaultServer("127.0.0.2") as other:
        urls = [s.page(f"/d{i}.html", "<html>d</html>") for s in (fault_server, other) for i in range(5)]
        results, _ = fetch_urls(urls, delay_seconds=0.15)
        assert all(r.ok for r in results)
        for server in (fault_server, other):
            assert_spaced(server.start_gaps(), 0.15)
        # per host, not global: the two hosts ran side by side (each started pages while the other still
        # had some to start), and some two requests to different hosts started closer than the delay
        # (a global delay would space every start by 0.15 s); no wall-clock bound, which load would break
        one, two = ([r.started for r in s.records] for s in (fault_server, other))
        assert min(two) < max(one) and min(one) < max(two)
        starts = sorted(one + two)
        assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) < 0.15 / 2


@both_transports
def test_backoff_sleep_does_not_hold_the_host_slot(fault_server: FaultServer, transport: str) -> None:
    fault_server.status_sequence("/flaky.html", [500, 200])
    fault_server.page("/fine.html", "<html>fine</html>")
    results, _ = fetch_urls(
        [fault_server.url("/flaky.html"), fault_server.url("/fine.html")],
        per_host_concurrency=1, backoff_base_seconds=0.4, backoff_max_seconds=0.4, respect_robots=False,
    )
    assert all(r.ok for r in results)
    # with one slot for the host, /fine.html got in while /flaky.html was backing off
    assert fault_server.paths() == ["/flaky.html", "/fine.html", "/flaky.html"]


# ---- robots.txt ------------------------------------------------------------------------------
def test_disallowed_urls_are_never_requested_and_robots_fetched_once_with_ua(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nDisallow: /private/\n")
    allowed = [fault_server.page(f"/pub/{i}.html", "<html>pub</html>") for i in range(20)]
    banned = [fault_server.page(f"/private/{i}.html", "<html>secret</html>") for i in range(20)]
    urls = [u for pair in zip(allowed, banned, strict=True) for u in pair]
    results, fetcher = fetch_urls(urls, per_host_concurrency=4)
    by_url = {r.url: r for r in results}
    assert all(by_url[u].ok for u in allowed)
    for u in banned:
        assert by_url[u].error == "robots" and by_url[u].attempts == 0 and by_url[u].status is None
    assert not any(p.startswith("/private/") for p in fault_server.paths())
    robots_hits = fault_server.requests_for("/robots.txt")
    assert len(robots_hits) == 1
    assert robots_hits[0].user_agent == UA
    assert all(rec.user_agent == UA for rec in fault_server.records)
    assert fetcher.stats.robots_requests[fault_server.base_url] == 1


def test_robots_group_for_our_agent_wins(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: sieve-test\nDisallow: /not-for-sieve\n\nUser-agent: *\nDisallow: /\n")
    a = fault_server.page("/ok.html", "<html>ok</html>")
    b = fault_server.page("/not-for-sieve.html", "<html>no</html>")
    (ok, no), _ = fetch_urls([a, b])
    assert ok.ok and no.error == "robots"


@both_transports
def test_crawl_delay_larger_than_configured_delay_is_honoured(fault_server: FaultServer, transport: str) -> None:
    fault_server.robots("User-agent: *\nCrawl-delay: 0.2\n")
    urls = [fault_server.page(f"/c{i}.html", "<html>c</html>") for i in range(5)]
    results, _ = fetch_urls(urls, delay_seconds=0.01, per_host_concurrency=4)
    assert all(r.ok for r in results)
    # robots.txt counts too: the first page waits the Crawl-delay after it, and with it in the list a page
    # recorded late is judged with the gap before it (see assert_spaced)
    page_gaps = fault_server.start_gaps()
    assert len(page_gaps) == 5
    assert_spaced(page_gaps, 0.2)


def test_crawl_delay_smaller_than_configured_delay_does_not_shorten_it(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nCrawl-delay: 0.01\n")
    urls = [fault_server.page(f"/c{i}.html", "<html>c</html>") for i in range(4)]
    fetch_urls(urls, delay_seconds=0.12, per_host_concurrency=4)
    assert_spaced(fault_server.start_gaps(), 0.12)


def test_crawl_delay_above_the_cap_is_clamped_to_it(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nCrawl-delay: 30\n")
    urls = [fault_server.page(f"/c{i}.html", "<html>c</html>") for i in range(4)]

    async def go() -> list[FetchResult]:
        async with Fetcher(settings(delay_seconds=0.0, per_host_concurrency=4, max_crawl_delay_seconds=0.15),
                           ("127.0.0.1",)) as fetcher:
            # unclamped, the 30 s Crawl-delay would take 90 s here: fail in 5 s instead
            return list(await asyncio.wait_for(asyncio.gather(*(fetcher.fetch(u) for u in urls)), 5))

    results = asyncio.run(go())
    assert all(r.ok for r in results)
    assert_spaced(fault_server.start_gaps(), 0.15)   # the cap still spaces them (robots.txt and 4 pages)


def test_respect_robots_false_turns_it_off(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nDisallow: /\nCrawl-delay: 30\n")
    url = fault_server.page("/any.html", "<html>any</html>")
    (r,), _ = fetch_urls([url], respect_robots=False)
    assert r.ok
    assert fault_server.paths() == ["/any.html"]


def test_missing_robots_allows_and_unreachable_robots_disallows(fault_server: FaultServer) -> None:
    with FaultServer("127.0.0.2") as broken:
        broken.status_sequence("/robots.txt", [503])
        fine = fault_server.page("/a.html", "<html>a</html>")       # no robots.txt route: 404
        blocked = broken.page("/a.html", "<html>a</html>")
        (ok, no), _ = fetch_urls([fine, blocked], retries=1)
        assert ok.ok
        assert no.error == "unreachable" and "HTTP 503" in no.detail and "robots.txt" in no.detail
        assert no.attempts == 0 and no.status is None               # the page itself was never requested
        assert broken.paths() == ["/robots.txt", "/robots.txt"]     # retried like any request, then given up


def test_redirect_target_is_checked_against_robots(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nDisallow: /private/\n")
    fault_server.redirect("/go.html", "/private/x.html")
    fault_server.page("/private/x.html", "<html>secret</html>")
    (r,), _ = fetch_urls([fault_server.url("/go.html")])
    assert r.error == "robots"
    assert "/private/x.html" not in fault_server.paths()


@both_transports
def test_retry_after_pauses_the_whole_host(fault_server: FaultServer, transport: str) -> None:
    fault_server.throttled("/busy.html", 0.3, times=1)
    fault_server.page("/other.html", "<html>other</html>")
    results, _ = fetch_urls(
        [fault_server.url("/busy.html"), fault_server.url("/other.html")], per_host_concurrency=1, respect_robots=False
    )
    assert all(r.ok for r in results)
    throttled = fault_server.requests_for("/busy.html")[0]
    other = fault_server.requests_for("/other.html")[0]
    assert fault_server.paths()[0] == "/busy.html"
    assert other.started - throttled.started >= 0.28   # the host said "wait": nobody else went in meanwhile
