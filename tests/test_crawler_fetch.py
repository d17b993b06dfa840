"""Fetcher against a real misbehaving server: retries, Retry-After, limits, redirects, content types, 304."""
from __future__ import annotations

import asyncio
import sys
import time

import pytest

from crawler import ERROR_KINDS, CrawlSettings, Fetcher, FetchResult
from outcomes import FETCH_ERRORS, is_transient
from tests.faultserver import FaultServer, http_date

UA = "sieve-test/1.0 (+http://example.invalid/bot)"
TRANSPORT = "aiohttp"   # the default; tests marked `both_transports` run on httpx's own transport too


@pytest.fixture
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys.modules[__name__], "TRANSPORT", request.param)
    return request.param


# What the transport does: timeouts, resets, streaming limits, redirects, conditional GET, headers sent.
# Status handling and Retry-After are the Fetcher's own and run once.
both_transports = pytest.mark.parametrize("transport", ["aiohttp", "httpx"], indirect=True)


def settings(**overrides: object) -> CrawlSettings:
    base: dict[str, object] = dict(
        transport=TRANSPORT,        user_agent=UA, delay_seconds=0.0, timeout_seconds=2.0, retries=2,
        backoff_base_seconds=0.02, backoff_max_seconds=0.1, max_bytes=200_000,
    )
    base.update(overrides)
    return CrawlSettings(**base)


def fetch(server: FaultServer, *paths: str, allowed: tuple[str, ...] | None = ("127.0.0.1",), **kw: object) -> list[FetchResult]:
    async def go() -> list[FetchResult]:
        async with Fetcher(settings(**kw), allowed) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(server.url(p)) for p in paths)))

    return asyncio.run(go())


# ---- retries ---------------------------------------------------------------------------------
@both_transports
def test_500_then_200_is_retried_with_growing_backoff(fault_server: FaultServer, transport: str) -> None:
    fault_server.status_sequence("/flaky.html", [500, 503, 200], "<html><body>finally</body></html>")
    [r] = fetch(fault_server, "/flaky.html", retries=3, backoff_base_seconds=0.1, backoff_max_seconds=1.0)
    assert r.ok and r.error is None and r.status == 200
    assert r.attempts == 3
    assert "finally" in (r.text or "")
    hits = fault_server.requests_for("/flaky.html")
    assert len(hits) == 3
    first_gap = hits[1].started - hits[0].started
    second_gap = hits[2].started - hits[1].started
    # half-jitter: attempt n waits in [base*2^(n-1)/2, base*2^(n-1)]
    assert 0.045 <= first_gap < 0.5
    assert 0.095 <= second_gap < 0.8


def test_5xx_gives_up_after_configured_retries(fault_server: FaultServer) -> None:
    fault_server.status_sequence("/down.html", [502])
    [r] = fetch(fault_server, "/down.html", retries=2)
    assert r.error == "http_5xx" and r.status == 502
    assert r.attempts == 3
    assert len(fault_server.requests_for("/down.html")) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_other_4xx_are_not_retried(fault_server: FaultServer, status: int) -> None:
    fault_server.status_sequence("/gone.html", [status, 200])
    [r] = fetch(fault_server, "/gone.html", retries=3)
    assert r.error == "http_4xx" and r.status == status and r.attempts == 1
    assert len(fault_server.requests_for("/gone.html")) == 1


def test_retry_after_seconds_is_honoured(fault_server: FaultServer) -> None:
    fault_server.throttled("/busy.html", 0.4, times=1)
    [r] = fetch(fault_server, "/busy.html", backoff_base_seconds=0.01)
    assert r.ok and r.attempts == 2
    a, b = fault_server.requests_for("/busy.html")
    assert b.started - a.started >= 0.38


def test_retry_after_http_date_is_honoured(fault_server: FaultServer) -> None:
    fault_server.throttled("/busy.html", http_date(2.5), times=1)
    [r] = fetch(fault_server, "/busy.html", backoff_base_seconds=0.01)
    assert r.ok and r.attempts == 2
    a, b = fault_server.requests_for("/busy.html")
    assert b.started - a.started >= 1.2   # whole seconds: 1.5 to 2.5 s after registration, minus start-up


def test_retry_after_is_capped(fault_server: FaultServer) -> None:
    fault_server.throttled("/busy.html", 3600, times=1)
    started = time.monotonic()
    [r] = fetch(fault_server, "/busy.html", retry_after_cap_seconds=0.2)
    assert r.ok and r.attempts == 2
    a, b = fault_server.requests_for("/busy.html")
    assert 0.18 <= b.started - a.started < 2.0
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("status, kind", [(429, "rate_limited"), (425, "rate_limited"), (408, "timeout")])
def test_retried_4xx_are_recorded_with_their_own_transient_kind(fault_server: FaultServer, status: int, kind: str) -> None:
    fault_server.status_sequence("/busy.html", [status], headers={status: {"Retry-After": "0.05"}})
    [r] = fetch(fault_server, "/busy.html", retries=1)
    assert r.error == kind and r.status == status and r.attempts == 2
    assert is_transient(r.error)                       # the frontier retries it later: not a terminal 4xx
    assert r.retry_after_s == pytest.approx(0.05)      # the server's wish travels with the result


def test_retry_after_on_the_result_is_capped(fault_server: FaultServer) -> None:
    fault_server.status_sequence("/busy.html", [429], headers={429: {"Retry-After": "7200"}})
    fault_server.status_sequence("/down.html", [503], headers={503: {"Retry-After": "3"}})
    fault_server.status_sequence("/plain.html", [503])
    busy, down, plain = fetch(fault_server, "/busy.html", "/down.html", "/plain.html", retries=0,
                              retry_after_cap_seconds=5)
    assert busy.error == "rate_limited" and busy.retry_after_s == 5.0   # 7,200 s asked, capped
    assert down.error == "http_5xx" and down.retry_after_s == 3.0
    assert plain.error == "http_5xx" and plain.retry_after_s is None


# ---- timeouts, resets, size ------------------------------------------------------------------
@both_transports
def test_slow_server_times_out_and_is_retried(fault_server: FaultServer, transport: str) -> None:
    fault_server.slow("/slow.html", 5)
    started = time.monotonic()
    [r] = fetch(fault_server, "/slow.html", timeout_seconds=0.3, retries=1)
    assert r.error == "timeout" and r.status is None and r.attempts == 2
    assert time.monotonic() - started < 2.5
    assert len(fault_server.requests_for("/slow.html")) == 2


@both_transports
def test_timeout_covers_the_whole_body_not_each_read(fault_server: FaultServer, transport: str) -> None:
    # every chunk arrives within 0.15 s, so no single read times out; the whole takes 1.5 s
    fault_server.drip("/drip.html", chunks=10, interval=0.15)
    [r] = fetch(fault_server, "/drip.html", timeout_seconds=0.5, retries=0)
    assert r.error == "timeout"


@both_transports
def test_connection_reset_mid_body_is_retried_then_recorded(fault_server: FaultServer, transport: str) -> None:
    fault_server.reset_mid_body("/reset.html")
    fault_server.close_without_answer("/hangup.html")
    reset, hangup = fetch(fault_server, "/reset.html", "/hangup.html", retries=1)
    for r in (reset, hangup):
        assert r.error == "connection" and r.attempts == 2 and r.text is None
    assert len(fault_server.requests_for("/reset.html")) == 2


@pytest.mark.parametrize("declare_length", [True, False])
@both_transports
def test_max_bytes_aborts_the_download(fault_server: FaultServer, declare_length: bool, transport: str) -> None:
    fault_server.huge("/huge.html", 200_000_000, declare_length=declare_length)
    fault_server.page("/small.html", "<html>" + "x" * 1000 + "</html>")
    started = time.monotonic()
    huge, small = fetch(fault_server, "/huge.html", "/small.html", max_bytes=100_000)
    assert huge.error == "too_large" and huge.status == 200 and huge.body is None and huge.attempts == 1
    assert small.ok
    assert time.monotonic() - started < 5   # 200 MB were not downloaded


# ---- redirects -------------------------------------------------------------------------------
@both_transports
def test_on_site_redirect_chain_is_followed(fault_server: FaultServer, transport: str) -> None:
    fault_server.redirect("/old.html", "/older.html", 301)
    fault_server.redirect("/older.html", fault_server.url("/new.html#top"), 308)
    fault_server.page("/new.html", "<html><body>new home</body></html>")
    [r] = fetch(fault_server, "/old.html")
    assert r.ok and r.final_url == fault_server.url("/new.html")
    assert r.url == fault_server.url("/old.html")
    assert r.attempts == 3 and "new home" in (r.text or "")


@both_transports
def test_offsite_redirect_is_not_followed(fault_server: FaultServer, transport: str) -> None:
    with FaultServer("127.0.0.2") as elsewhere:
        elsewhere.page("/landing.html", "<html>elsewhere</html>")
        fault_server.redirect("/out.html", elsewhere.url("/landing.html"))
        [r] = fetch(fault_server, "/out.html", allowed=("127.0.0.1",))
        assert r.error == "offsite_redirect" and r.status == 302
        assert "127.0.0.2" in r.detail
        assert elsewhere.records == []


@both_transports
def test_redirect_loop_and_too_many_redirects(fault_server: FaultServer, transport: str) -> None:
    fault_server.redirect("/a.html", "/b.html")
    fault_server.redirect("/b.html", "/a.html")
    for i in range(10):
        fault_server.redirect(f"/hop{i}.html", f"/hop{i + 1}.html")
    fault_server.page("/hop10.html", "<html>end</html>")
    loop, chain = fetch(fault_server, "/a.html", "/hop0.html", max_redirects=3)
    assert loop.error == "too_many_redirects" and "loop" in loop.detail
    assert chain.error == "too_many_redirects"
    assert not fault_server.requests_for("/hop5.html")


@both_transports
def test_only_http_and_https(fault_server: FaultServer, transport: str) -> None:
    fault_server.redirect("/ftp.html", "ftp://127.0.0.1/file")

    async def go() -> tuple[FetchResult, FetchResult, FetchResult]:
        async with Fetcher(settings(), None) as fetcher:
            return (await fetcher.fetch("ftp://127.0.0.1/x"), await fetcher.fetch(fault_server.url("/ftp.html")),
                    await fetcher.fetch("http://127.0.0.1:port/x"))

    direct, redirected, malformed = asyncio.run(go())
    assert direct.error == "bad_scheme" and direct.attempts == 0
    assert malformed.error == "bad_scheme" and malformed.attempts == 0
    assert redirected.error == "bad_scheme"


# ---- content types, conditional GET ----------------------------------------------------------
@both_transports
def test_non_html_is_recorded_not_kept(fault_server: FaultServer, transport: str) -> None:
    fault_server.page("/logo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 5000, "image/png")
    fault_server.page("/doc.pdf", b"%PDF-1.4 " + b"x" * 5000, "application/pdf")
    fault_server.page("/feed.xml", "<?xml version='1.0'?><rss><channel></channel></rss>", "application/rss+xml")
    fault_server.page("/page.xhtml", "<html xmlns='http://www.w3.org/1999/xhtml'></html>", "application/xhtml+xml")
    png, pdf, feed, xhtml = fetch(fault_server, "/logo.png", "/doc.pdf", "/feed.xml", "/page.xhtml")
    for r, mtype in ((png, "image/png"), (pdf, "application/pdf")):
        assert r.error == "not_html" and r.status == 200 and r.body is None and r.text is None
        assert r.content_type == mtype and mtype in r.detail
    assert feed.ok and feed.text and "<rss>" in feed.text
    assert xhtml.ok


@both_transports
def test_conditional_get_gives_304(fault_server: FaultServer, transport: str) -> None:
    modified = http_date(-86400)
    fault_server.conditional("/etag.html", "<html>v1</html>", etag='"v1"')
    fault_server.conditional("/lm.html", "<html>v1</html>", last_modified=modified)

    async def go() -> list[FetchResult]:
        async with Fetcher(settings(), ("127.0.0.1",)) as f:
            first = await f.fetch(fault_server.url("/etag.html"))
            again = await f.fetch(fault_server.url("/etag.html"), etag=first.etag)
            stale = await f.fetch(fault_server.url("/etag.html"), etag='"v0"')
            lm_first = await f.fetch(fault_server.url("/lm.html"))
            lm_again = await f.fetch(fault_server.url("/lm.html"), last_modified=lm_first.last_modified)
            return [first, again, stale, lm_first, lm_again]

    first, again, stale, lm_first, lm_again = asyncio.run(go())
    assert first.ok and first.etag == '"v1"'
    assert again.status == 304 and again.error is None and again.not_modified and again.text is None
    assert again.etag == '"v1"'
    assert stale.status == 200 and stale.text == "<html>v1</html>"
    assert lm_first.last_modified == modified
    assert lm_again.not_modified and lm_again.last_modified == modified
    etag_hits = fault_server.requests_for("/etag.html")
    assert etag_hits[1].headers.get("if-none-match") == '"v1"'
    assert "if-none-match" not in etag_hits[0].headers
    assert fault_server.requests_for("/lm.html")[1].headers.get("if-modified-since") == modified


# ---- contract --------------------------------------------------------------------------------
@both_transports
def test_every_result_is_a_value_with_a_known_kind_and_ua_is_always_sent(fault_server: FaultServer, transport: str) -> None:
    fault_server.page("/ok.html", "<html>ok</html>")
    fault_server.status_sequence("/e500.html", [500])
    fault_server.page("/x.png", b"png", "image/png")
    fault_server.slow("/slow.html", 3)
    results = fetch(
        fault_server, "/ok.html", "/e500.html", "/x.png", "/slow.html", "/missing.html", timeout_seconds=0.3, retries=1
    )
    assert [r.error for r in results] == [None, "http_5xx", "not_html", "timeout", "http_4xx"]
    assert ERROR_KINDS == tuple(FETCH_ERRORS)              # the crawler's kinds are outcomes' table, not a copy
    assert all(r.error is None or r.error in ERROR_KINDS for r in results)
    assert all(r.elapsed_ms >= 0 for r in results)
    assert results[0].nbytes == len("<html>ok</html>") and results[0].encoding == "utf-8"
    assert results[0].content_type == "text/html; charset=utf-8"
    assert fault_server.records and all(rec.user_agent == UA for rec in fault_server.records)


def test_new_settings_are_validated() -> None:
    from pydantic import ValidationError

    for bad in ({"transport": "curl"}, {"max_cookies_per_host": -1}, {"rate_limit_pause_after": 0},
                {"max_cookie_bytes_per_host": -5}):
        with pytest.raises(ValidationError):
            CrawlSettings(**bad)   # type: ignore[arg-type]
    assert CrawlSettings().transport == "aiohttp"   # the measured winner (bench/transport.py) is the default
