"""When a host is down or says "slow down", and when sieve itself has a bug: the kinds recorded, how fast
the rest of the host's URLs fail, and what the frontier is told (issues 13, 14, 16)."""
from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

import crawler.fetcher
from crawler import CrawlSettings, Fetcher, FetchResult
from crawler.errors import TerminalError, TransientError, fetch_error
from outcomes import FETCH_ERRORS, INTERNAL_ERROR, is_transient
from tests.faultserver import FaultServer


def settings(**overrides: object) -> CrawlSettings:
    base: dict[str, object] = dict(delay_seconds=0.0, timeout_seconds=2.0, retries=1, backoff_base_seconds=0.02,
                                   backoff_max_seconds=0.05, per_host_concurrency=2)
    base.update(overrides)
    return CrawlSettings(**base)


def fetch_all(urls: list[str], allowed: tuple[str, ...] | None = ("127.0.0.1", "127.0.0.2"), **kw: object
              ) -> tuple[list[FetchResult], Fetcher, float]:
    async def go() -> tuple[list[FetchResult], Fetcher]:
        async with Fetcher(settings(**kw), allowed) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(u) for u in urls))), fetcher

    started = time.monotonic()
    results, fetcher = asyncio.run(go())
    return results, fetcher, time.monotonic() - started


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the vocabulary --------------------------------------------------------------------------
def test_the_kind_alone_decides_transient_or_terminal() -> None:
    for kind in FETCH_ERRORS:
        exc = fetch_error(kind, "x")
        assert isinstance(exc, TransientError if is_transient(kind) else TerminalError), kind
    assert isinstance(fetch_error("rate_limited"), TransientError) and isinstance(fetch_error("timeout"), TransientError)
    assert isinstance(fetch_error(INTERNAL_ERROR), TerminalError)
    with pytest.raises(ValueError):
        fetch_error("conection")   # a typo is refused, not recorded as a kind nobody knows


def test_a_bug_is_internal_error_logged_with_its_traceback_and_not_retried(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in decoding")

    monkeypatch.setattr(crawler.fetcher, "decode_html", broken)
    url = fault_server.page("/a.html", "<html>a</html>")
    with caplog.at_level(logging.ERROR, logger="crawler.fetcher"):
        [r], _, _ = fetch_all([url], retries=3)
    assert r.error == INTERNAL_ERROR and "RuntimeError: a bug in decoding" in r.detail
    assert not is_transient(r.error)                       # the frontier does not back off and retry a bug
    assert len(fault_server.requests_for("/a.html")) == 1
    [record] = [rec for rec in caplog.records if rec.name == "crawler.fetcher"]
    assert record.exc_info is not None and "a.html" in record.getMessage()


# ---- robots.txt outages ----------------------------------------------------------------------
def test_host_refusing_connections_is_unreachable_and_its_urls_fail_fast() -> None:
    port = closed_port()
    urls = [f"http://127.0.0.1:{port}/p{i}.html" for i in range(30)]
    results, fetcher, elapsed = fetch_all(urls, allowed=None, retries=2)
    for r in results:
        assert r.error == "unreachable" and r.attempts == 0 and r.status is None, (r.error, r.detail)
        assert "robots.txt" in r.detail and "connection" in r.detail
    assert is_transient("unreachable")                      # deferred by the frontier, not a robots refusal
    assert fetcher.stats.robots_requests[f"http://127.0.0.1:{port}"] == 3   # one download, its retries: once per run
    assert fetcher.stats.requests == 3
    assert elapsed < 3


def test_robots_timeout_makes_the_host_unreachable_without_hammering_it(fault_server: FaultServer) -> None:
    fault_server.slow("/robots.txt", 5)
    urls = [fault_server.page(f"/p{i}.html", "<html>p</html>") for i in range(20)]
    results, _, elapsed = fetch_all(urls, timeout_seconds=0.3, retries=1)
    assert all(r.error == "unreachable" and "timeout" in r.detail for r in results)
    assert fault_server.paths() == ["/robots.txt", "/robots.txt"]   # two attempts, then every page failed at once
    assert elapsed < 2.5


@pytest.mark.parametrize("status", [429, 500, 503])
def test_robots_answering_429_or_5xx_is_unreachable(fault_server: FaultServer, status: int) -> None:
    fault_server.status_sequence("/robots.txt", [status])
    url = fault_server.page("/a.html", "<html>a</html>")
    [r], _, _ = fetch_all([url], retries=0)
    assert r.error == "unreachable" and f"HTTP {status}" in r.detail
    assert fault_server.paths() == ["/robots.txt"]


# ---- 429 -------------------------------------------------------------------------------------
def test_a_host_that_keeps_answering_429_is_paused_for_the_run(fault_server: FaultServer) -> None:
    throttled = [fault_server.status_sequence(f"/t{i}.html", [429], headers={429: {"Retry-After": "5"}})
                 for i in range(10)]
    with FaultServer("127.0.0.2") as other:
        fine = [other.page(f"/f{i}.html", "<html>f</html>") for i in range(5)]
        results, _, elapsed = fetch_all(throttled + fine, retries=3, retry_after_cap_seconds=0.2,
                                        rate_limit_pause_after=3, respect_robots=False)
    stopped, ok = results[:10], results[10:]
    assert all(r.ok for r in ok)                               # another host is not paused with it
    for r in stopped:
        assert r.error == "rate_limited" and r.retry_after_s == 0.2, (r.error, r.detail, r.retry_after_s)
    assert sum("paused for the rest of this run" in r.detail for r in stopped) >= 8   # failed fast, never sent
    sent = [p for p in fault_server.paths() if p.startswith("/t")]
    assert 3 <= len(sent) <= 4                                 # N answers (+1 already in flight), not 10 x 4 attempts
    assert elapsed < 2.0                                       # unpaused: 40 requests x 0.2 s = 8 s (84 s at 5 s)


def test_an_answer_other_than_429_resets_the_count(fault_server: FaultServer) -> None:
    urls = [fault_server.throttled(f"/b{i}.html", 0.01, times=1) for i in range(6)]

    async def go() -> list[FetchResult]:
        async with Fetcher(settings(rate_limit_pause_after=2, respect_robots=False), ("127.0.0.1",)) as fetcher:
            return [await fetcher.fetch(u) for u in urls]   # 429, 200, 429, 200, ...: never two in a row

    results = asyncio.run(go())
    assert all(r.ok and r.attempts == 2 for r in results)
