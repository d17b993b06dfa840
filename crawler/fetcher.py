"""The Fetcher: one httpx.AsyncClient per crawl run, polite and bounded, that turns every outcome into a
FetchResult. Many asyncio tasks may call `fetch` at once; the limits hold across all of them.

One fetch, top to bottom:
  scheme check -> [per hop: robots.txt -> attempts (politeness slot -> one streamed request) with
  backoff sleeps between them, outside the slot] -> redirect? check target, next hop : decode -> result.

A "host" for politeness and stats is the URL authority `host[:port]` (default port dropped); robots.txt
is per origin (scheme + authority), as RFC 9309 says.

What can go wrong is a kind from `outcomes` (crawler/errors.py raises them, transient or terminal as
outcomes decides); anything else is a bug: logged with its traceback, recorded as `internal_error`.
Bodies are read raw and decoded by crawler/codings.py, so max_bytes counts decoded bytes of every layer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from crawler.codings import ACCEPT_ENCODING
from crawler.cookies import BoundedCookieJar
from crawler.decode import decode_html
from crawler.errors import SieveCrawlError, TransientError, fetch_error
from crawler.politeness import Politeness
from crawler.response import REDIRECT_STATUSES, Response, read_response
from crawler.result import FetchResult
from crawler.retry import backoff_seconds
from crawler.robots import ROBOTS_MAX_BYTES, RobotsCache, RobotsFetch
from crawler.settings import CrawlSettings
from crawler.transport import build_transport, is_timeout, transport_errors
from crawler.urls import HTTP_SCHEMES, HostRules, origin_of, without_userinfo
from outcomes import INTERNAL_ERROR

log = logging.getLogger(__name__)

DEFAULT_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6",
    "Accept-Encoding": ACCEPT_ENCODING,  # exactly what crawler/codings.py can undo
}


@dataclass
class FetcherStats:
    """Counters a test or benchmark can assert on. Hosts are `host[:port]`."""

    requests: int = 0  # every HTTP request sent, robots included
    requests_by_host: Counter = field(default_factory=Counter)
    robots_requests: Counter = field(default_factory=Counter)  # origin -> robots.txt requests
    retries: int = 0  # attempts after the first, all hops
    retry_sleep_seconds: float = 0.0
    fetches: int = 0  # fetch() calls completed
    outcomes: Counter = field(default_factory=Counter)  # "ok", "not_modified" or an error kind
    bytes_received: int = 0  # on the wire (before Content-Encoding is undone)
    max_in_flight: int = 0  # all hosts together
    max_in_flight_by_host: dict[str, int] = field(default_factory=dict)


def host_key(url: str) -> str:
    """`host[:port]` of a URL, default port dropped: the unit of politeness."""
    return origin_of(url).split("://", 1)[1]


class Fetcher:
    """Fetch pages politely. Use as `async with Fetcher(settings, allowed_hosts) as f: await f.fetch(url)`.

    `allowed_hosts=None` allows every host (e.g. `sieve extract URL`); otherwise redirects off those hosts
    (robots.txt's included) are refused (`offsite_redirect`). The URL given to `fetch` is requested as given
    (callers normalise). `transport` replaces the one `settings.transport` names (tests, benchmarks).
    """

    def __init__(
        self,
        settings: CrawlSettings,
        allowed_hosts: Iterable[str] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.hosts = HostRules(allowed_hosts)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._politeness: Politeness | None = None
        self._robots: RobotsCache | None = None
        self._delay_applied: set[str] = set()
        self._rng = random.Random()
        self._network_errors: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)
        self.cookies = BoundedCookieJar(settings.max_cookies_per_host, settings.max_cookie_bytes_per_host)
        self.stats = FetcherStats()

    # ---- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> Fetcher:
        s = self.settings
        transport = self._transport
        if transport is None:
            transport = build_transport(s, self._headers_sent)
            self._network_errors = (httpx.TransportError, OSError, *transport_errors(s))
        self._client = httpx.AsyncClient(
            transport=transport,
            cookies=self.cookies,
            headers={"User-Agent": s.user_agent, **DEFAULT_HEADERS},
            timeout=httpx.Timeout(s.timeout_seconds),
            limits=httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency),
            follow_redirects=False,
            http2=False,
            trust_env=s.trust_env,
        )
        # asyncio primitives are created here, inside the running loop that will use them
        self._politeness = Politeness(s.concurrency, s.per_host_concurrency, s.delay_seconds)
        self.stats.max_in_flight_by_host = self._politeness.max_in_flight_by_host
        self._robots = RobotsCache(self._download_robots, s.user_agent)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._robots is not None:
            self._robots.cancel_pending()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- public ------------------------------------------------------------------------------
    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Fetch one URL. Never raises for network or HTTP problems: the result carries the reason."""
        if self._client is None:
            raise RuntimeError("Fetcher used outside `async with`")
        result = FetchResult(url=url, final_url=url, status=None, attempts=0)
        try:
            await self._fetch(result, etag, last_modified)
        except SieveCrawlError as exc:
            result.error, result.detail = exc.kind, exc.detail
            if exc.status is not None:
                result.status = exc.status
            result.content_type = exc.content_type or result.content_type
            result.nbytes = exc.nbytes or result.nbytes
            if exc.retry_after is not None:
                result.retry_after_s = min(exc.retry_after, self.settings.retry_after_cap_seconds)
        except Exception as exc:  # a bug: never dressed up as a network failure (which would be retried)
            log.exception("bug while fetching %s", url)
            result.error, result.detail = INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"
        self.stats.fetches += 1
        self.stats.outcomes[result.error or ("not_modified" if result.status == 304 else "ok")] += 1
        return result

    # ---- one fetch ---------------------------------------------------------------------------
    async def _fetch(self, result: FetchResult, etag: str | None, last_modified: str | None) -> None:
        s = self.settings
        try:
            current = without_userinfo(result.url)  # httpx would send user:pass@ as an Authorization header
            parts = urlsplit(current)
            parts.port  # noqa: B018 (raises ValueError on a malformed port)
        except ValueError:
            raise fetch_error("bad_scheme", f"malformed URL: {result.url[:200]}") from None
        if parts.scheme.lower() not in HTTP_SCHEMES or not parts.hostname:
            raise fetch_error("bad_scheme", f"not an http(s) URL: {current[:200]}")
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen = {current}
        hops = 0
        while True:
            result.final_url = current
            if s.respect_robots:
                await self._check_robots(current)
            response = await self._request_with_retries(current, headers, result, robots=False)
            if response.status in REDIRECT_STATUSES and response.body is None:
                target = self._redirect_target(current, response)
                hops += 1
                if hops > s.max_redirects:
                    raise fetch_error(
                        "too_many_redirects",
                        f"more than {s.max_redirects} redirects (next: {target})",
                        status=response.status,
                    )
                if target in seen:
                    raise fetch_error("too_many_redirects", f"redirect loop back to {target}", status=response.status)
                seen.add(target)
                current = target
                continue
            self._fill(result, response, etag, last_modified)
            return

    def _redirect_target(self, current: str, response: Response) -> str:
        """Where a redirect goes, if we may follow it: http(s), an allowed host, no credentials sent along."""
        location = response.headers.get("location", "")
        try:
            target = without_userinfo(urljoin(current, location.strip()))
            parts = urlsplit(target)
            host = parts.hostname or ""
        except ValueError:
            raise fetch_error("bad_scheme", f"malformed redirect to {location[:200]}", status=response.status) from None
        if parts.scheme.lower() not in HTTP_SCHEMES or not host:
            raise fetch_error("bad_scheme", f"redirect to {target[:200]}", status=response.status)
        if not self.hosts.allows(host):
            raise fetch_error("offsite_redirect", f"redirect to {target[:200]}", status=response.status)
        return urlunsplit(parts._replace(fragment=""))

    def _fill(self, result: FetchResult, response: Response, etag: str | None, last_modified: str | None) -> None:
        result.status = response.status
        result.content_type = response.content_type
        result.etag = response.headers.get("etag") or (etag if response.status == 304 else None)
        result.last_modified = response.headers.get("last-modified") or (
            last_modified if response.status == 304 else None
        )
        if response.body is None:
            return
        result.body = response.body
        result.nbytes = len(response.body)
        decoded = decode_html(response.body, response.content_type)
        result.text, result.encoding, result.replaced = decoded.text, decoded.encoding, decoded.replaced

    # ---- robots.txt --------------------------------------------------------------------------
    async def _check_robots(self, url: str) -> None:
        assert self._robots is not None and self._politeness is not None
        origin = origin_of(url)
        answer = self._robots.cached(origin) or await self._robots.answer(origin)
        if answer.unreachable:  # RFC 9309: not crawled; cached, so every later URL of the host fails at once
            raise fetch_error(
                "unreachable",
                f"robots.txt of {origin} could not be fetched ({answer.reason}); the host is not crawled in this run",
            )
        if origin not in self._delay_applied:
            self._delay_applied.add(origin)
            delay = answer.crawl_delay(self.settings.user_agent)
            if delay:
                self._politeness.set_delay(host_key(url), min(delay, self.settings.max_crawl_delay_seconds))
        if not answer.can_fetch(url, self.settings.user_agent):
            raise fetch_error("robots", f"disallowed by robots.txt ({answer.reason})")

    async def _download_robots(self, robots_url: str) -> RobotsFetch:
        """Fetch robots.txt through the same politeness, retries and redirect checks as a page; up to 5
        redirects (RFC 9309), none of them off the allowed hosts."""
        scratch = FetchResult(url=robots_url, final_url=robots_url, status=None, attempts=0)
        current = robots_url
        try:
            for _ in range(6):
                response = await self._request_with_retries(current, {}, scratch, robots=True)
                if response.status in REDIRECT_STATUSES and response.body is None:
                    current = self._redirect_target(current, response)
                    continue
                text = response.body.decode("utf-8", "replace") if response.body is not None else None
                return RobotsFetch(response.status, text)
            return RobotsFetch(
                None, error="too_many_redirects", detail=f"more than 5 redirects (last: {current[:200]})"
            )
        except SieveCrawlError as exc:
            return RobotsFetch(exc.status, error=exc.kind, detail=exc.detail)

    # ---- attempts ----------------------------------------------------------------------------
    async def _request_with_retries(
        self, url: str, headers: dict[str, str], result: FetchResult, *, robots: bool
    ) -> Response:
        assert self._politeness is not None
        s = self.settings
        politeness = self._politeness
        key = host_key(url)
        attempt = 0
        while True:
            attempt += 1
            try:
                self._fail_if_halted(key)
                async with politeness.slot(key):
                    self._fail_if_halted(key)  # the wait for the slot may have been long
                    result.attempts += 1
                    self.stats.requests += 1
                    self.stats.requests_by_host[key] += 1
                    self.stats.max_in_flight = politeness.max_in_flight
                    if robots:
                        self.stats.robots_requests[origin_of(url)] += 1
                    started = time.perf_counter()
                    try:
                        response = await self._request_once(url, key, headers, robots=robots)
                    except SieveCrawlError as exc:
                        if exc.status is not None:
                            politeness.note_answer(
                                key,
                                rate_limited=exc.kind == "rate_limited",
                                retry_after=exc.retry_after,
                                halt_after=s.rate_limit_pause_after,
                            )
                        raise
                    finally:
                        result.elapsed_ms += int((time.perf_counter() - started) * 1000)
                    politeness.note_answer(
                        key, rate_limited=False, retry_after=None, halt_after=s.rate_limit_pause_after
                    )
                    return response
            except TransientError as exc:
                if attempt > s.retries or politeness.halted(key):
                    raise
                if exc.retry_after is not None:
                    wait = min(exc.retry_after, s.retry_after_cap_seconds)
                    politeness.pause(key, wait)  # the whole host asked for a pause, not just this URL
                else:
                    wait = backoff_seconds(attempt, s.backoff_base_seconds, s.backoff_max_seconds, self._rng)
                self.stats.retries += 1
                self.stats.retry_sleep_seconds += wait
                log.debug("retrying %s in %.2fs after %s", url, wait, exc)
                await asyncio.sleep(wait)

    def _fail_if_halted(self, key: str) -> None:
        assert self._politeness is not None
        why = self._politeness.halted(key)
        if why is not None:
            raise fetch_error("rate_limited", why, retry_after=self._politeness.last_retry_after(key))

    def _count_raw(self, nbytes: int) -> None:
        self.stats.bytes_received += nbytes

    def _headers_sent(self, url: str) -> None:
        """The transport wrote a request's headers (after any connect): spacing for its host counts from now."""
        if self._politeness is not None:
            self._politeness.mark_sent(host_key(url))

    async def _request_once(self, url: str, key: str, headers: dict[str, str], *, robots: bool) -> Response:
        """One request, streamed. Raises SieveCrawlError (transient or terminal); returns what came back."""
        assert self._client is not None and self._politeness is not None
        s = self.settings
        extensions = None
        if self._transport is None and s.transport == "httpx" and self._politeness.spaced(key):
            politeness = self._politeness

            async def trace(event: str, info: dict) -> None:
                if event == "http11.send_request_headers.started":
                    politeness.mark_sent(key)

            extensions = {"trace": trace}
        try:
            async with asyncio.timeout(s.timeout_seconds):  # the whole request, body included
                async with self._client.stream("GET", url, headers=headers, extensions=extensions) as response:
                    limit = ROBOTS_MAX_BYTES if robots else s.max_bytes
                    return await read_response(url, response, limit, robots=robots, on_raw=self._count_raw)
        except SieveCrawlError:
            raise
        except (TimeoutError, httpx.TimeoutException) as exc:
            if is_timeout(exc):
                raise fetch_error(
                    "timeout", f"no complete answer within {s.timeout_seconds:g}s ({type(exc).__name__})"
                ) from None
            raise fetch_error("connection", _describe(exc.__cause__ or exc)) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise fetch_error("bad_scheme", str(exc)) from None
        except self._network_errors as exc:
            raise fetch_error("connection", _describe(exc)) from None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
