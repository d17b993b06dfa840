"""The Fetcher: one httpx.AsyncClient per crawl run, polite and bounded, that turns every outcome into a
FetchResult. Many asyncio tasks may call `fetch` at once; the limits hold across all of them.

One fetch, top to bottom:
  scheme check -> [per hop: robots.txt -> attempts (politeness slot -> one streamed request) with
  backoff sleeps between them, outside the slot] -> redirect? check target, next hop : decode -> result.

A "host" for politeness and stats is the URL authority `host[:port]` (default port dropped); robots.txt
is per origin (scheme + authority), as RFC 9309 says.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from crawler.decode import decode_html
from crawler.errors import SieveCrawlError, TerminalError, TransientError
from crawler.politeness import Politeness
from crawler.result import FetchResult
from crawler.retry import backoff_seconds, is_retryable_status, parse_retry_after
from crawler.robots import ROBOTS_MAX_BYTES, RobotsCache
from crawler.settings import CrawlSettings
from crawler.urls import HTTP_SCHEMES, HostRules, origin_of

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
XML_TYPES = frozenset(
    {"application/xml", "text/xml", "application/rss+xml", "application/atom+xml", "application/rdf+xml",
     "application/x-rss+xml", "application/x-atom+xml"}
)
ACCEPTED_TYPES = HTML_TYPES | XML_TYPES
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/octet-stream"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6",
}


@dataclass
class FetcherStats:
    """Counters a test or benchmark can assert on. Hosts are `host[:port]`."""

    requests: int = 0                                               # every HTTP request sent, robots included
    requests_by_host: Counter = field(default_factory=Counter)
    robots_requests: Counter = field(default_factory=Counter)       # origin -> robots.txt requests
    retries: int = 0                                                # attempts after the first, all hops
    retry_sleep_seconds: float = 0.0
    fetches: int = 0                                                # fetch() calls completed
    outcomes: Counter = field(default_factory=Counter)              # "ok", "not_modified" or an error kind
    bytes_received: int = 0
    max_in_flight: int = 0                                          # all hosts together
    max_in_flight_by_host: dict[str, int] = field(default_factory=dict)


@dataclass
class _Response:
    """What one request produced, body already read (or None for redirects and 304)."""

    url: str
    status: int
    headers: httpx.Headers
    content_type: str | None
    body: bytes | None


def host_key(url: str) -> str:
    """`host[:port]` of a URL, default port dropped: the unit of politeness."""
    return origin_of(url).split("://", 1)[1]


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _looks_like_markup(body: bytes) -> bool:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<", b"\xff\xfe<", b"\xfe\xff\x00<"))


def _gunzip(data: bytes, limit: int, status: int, content_type: str | None) -> bytes:
    """A gzipped sitemap, inflated no further than max_bytes (a gzip bomb stops there)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise TerminalError("decode", f"gzip: {exc}", status=status, content_type=content_type) from None
    if len(out) > limit:
        raise TerminalError("too_large", f"inflated body passed max_bytes {limit}", status=status,
                            content_type=content_type, nbytes=len(data))
    return out


class Fetcher:
    """Fetch pages politely. Use as `async with Fetcher(settings, allowed_hosts) as f: await f.fetch(url)`.

    `allowed_hosts=None` allows every host (e.g. `sieve extract URL`); otherwise redirects off those hosts
    are refused (`offsite_redirect`). The URL given to `fetch` is requested as given (callers normalise).
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
        self.stats = FetcherStats()

    # ---- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> "Fetcher":
        s = self.settings
        self._client = httpx.AsyncClient(
            transport=self._transport,
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
        except (httpx.HTTPError, OSError, ValueError, UnicodeError) as exc:   # a malformed URL or header
            result.error, result.detail = "connection", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug must not kill a crawl of thousands of pages: record it loudly
            log.exception("unexpected error fetching %s", url)
            result.error, result.detail = "connection", f"unexpected {type(exc).__name__}: {exc}"
        self.stats.fetches += 1
        self.stats.outcomes[result.error or ("not_modified" if result.status == 304 else "ok")] += 1
        return result

    # ---- one fetch ---------------------------------------------------------------------------
    async def _fetch(self, result: FetchResult, etag: str | None, last_modified: str | None) -> None:
        s = self.settings
        current = result.url
        try:
            parts = urlsplit(current)
            parts.port   # noqa: B018 (raises ValueError on a malformed port)
        except ValueError:
            raise TerminalError("bad_scheme", f"malformed URL: {current[:200]}") from None
        if parts.scheme.lower() not in HTTP_SCHEMES or not parts.hostname:
            raise TerminalError("bad_scheme", f"not an http(s) URL: {current[:200]}")
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
                    raise TerminalError("too_many_redirects", f"more than {s.max_redirects} redirects (next: {target})",
                                        status=response.status)
                if target in seen:
                    raise TerminalError("too_many_redirects", f"redirect loop back to {target}", status=response.status)
                seen.add(target)
                current = target
                continue
            self._fill(result, response, etag, last_modified)
            return

    def _redirect_target(self, current: str, response: _Response) -> str:
        location = response.headers.get("location", "")
        target = urljoin(current, location.strip())
        parts = urlsplit(target)
        if parts.scheme.lower() not in HTTP_SCHEMES:
            raise TerminalError("bad_scheme", f"redirect to {target[:200]}", status=response.status)
        if not self.hosts.allows(parts.hostname or ""):
            raise TerminalError("offsite_redirect", f"redirect to {target[:200]}", status=response.status)
        return urlunsplit(parts._replace(fragment=""))

    def _fill(self, result: FetchResult, response: _Response, etag: str | None, last_modified: str | None) -> None:
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
        if origin not in self._delay_applied:
            self._delay_applied.add(origin)
            delay = answer.crawl_delay(self.settings.user_agent)
            if delay:
                self._politeness.set_delay(host_key(url), min(delay, self.settings.max_crawl_delay_seconds))
        if not answer.can_fetch(url, self.settings.user_agent):
            raise TerminalError("robots", f"disallowed by robots.txt ({answer.reason})")

    async def _download_robots(self, robots_url: str) -> tuple[int | None, str | None, str | None]:
        """Fetch robots.txt through the same politeness and retries; follow up to 5 redirects (RFC 9309)."""
        scratch = FetchResult(url=robots_url, final_url=robots_url, status=None, attempts=0)
        current = robots_url
        try:
            for _ in range(6):
                response = await self._request_with_retries(current, {}, scratch, robots=True)
                if response.status in REDIRECT_STATUSES and response.body is None:
                    location = response.headers.get("location", "")
                    current = urljoin(current, location)
                    if urlsplit(current).scheme.lower() not in HTTP_SCHEMES:
                        return None, None, "bad_scheme"
                    continue
                if response.body is None:
                    return response.status, None, None
                return response.status, response.body.decode("utf-8", "replace"), None
            return None, None, "too_many_redirects"
        except SieveCrawlError as exc:
            return exc.status, None, exc.kind

    # ---- attempts ----------------------------------------------------------------------------
    async def _request_with_retries(
        self, url: str, headers: dict[str, str], result: FetchResult, *, robots: bool
    ) -> _Response:
        assert self._politeness is not None
        s = self.settings
        key = host_key(url)
        attempt = 0
        while True:
            attempt += 1
            result.attempts += 1
            try:
                async with self._politeness.slot(key):
                    self.stats.requests += 1
                    self.stats.requests_by_host[key] += 1
                    self.stats.max_in_flight = self._politeness.max_in_flight
                    if robots:
                        self.stats.robots_requests[origin_of(url)] += 1
                    started = time.perf_counter()
                    try:
                        return await self._request_once(url, key, headers, robots=robots)
                    finally:
                        result.elapsed_ms += int((time.perf_counter() - started) * 1000)
            except TransientError as exc:
                if attempt > s.retries:
                    raise
                if exc.retry_after is not None:
                    wait = min(exc.retry_after, s.retry_after_cap_seconds)
                    self._politeness.pause(key, wait)   # the whole host asked for a pause, not just this URL
                else:
                    wait = backoff_seconds(attempt, s.backoff_base_seconds, s.backoff_max_seconds, self._rng)
                self.stats.retries += 1
                self.stats.retry_sleep_seconds += wait
                log.debug("retrying %s in %.2fs after %s", url, wait, exc)
                await asyncio.sleep(wait)

    async def _request_once(self, url: str, key: str, headers: dict[str, str], *, robots: bool) -> _Response:
        """One request, streamed. Raises TransientError / TerminalError; returns what came back."""
        assert self._client is not None and self._politeness is not None
        s = self.settings
        extensions = None
        if self._politeness.spaced(key):
            politeness = self._politeness

            async def trace(event: str, info: dict) -> None:
                if event == "http11.send_request_headers.started":
                    politeness.mark_sent(key)

            extensions = {"trace": trace}
        try:
            async with asyncio.timeout(s.timeout_seconds):   # the whole request, body included
                async with self._client.stream("GET", url, headers=headers, extensions=extensions) as response:
                    return await self._read(url, response, robots=robots)
        except SieveCrawlError:
            raise
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TransientError("timeout", f"no complete answer within {s.timeout_seconds:g}s ({type(exc).__name__})")
        except httpx.DecodingError as exc:
            raise TerminalError("decode", f"content-encoding: {exc}") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise TerminalError("bad_scheme", str(exc)) from None
        except (httpx.TransportError, OSError) as exc:
            raise TransientError("connection", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    async def _read(self, url: str, response: httpx.Response, *, robots: bool) -> _Response:
        s = self.settings
        status = response.status_code
        content_type = response.headers.get("content-type")
        answer = _Response(url, status, response.headers, content_type, None)
        if status in REDIRECT_STATUSES and "location" in response.headers:
            return answer
        if status == 304:
            return answer
        if is_retryable_status(status):
            kind = "http_5xx" if status >= 500 else "http_4xx"
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise TransientError(kind, f"HTTP {status}", status=status, retry_after=retry_after, content_type=content_type)
        if status >= 400:
            raise TerminalError("http_5xx" if status >= 500 else "http_4xx", f"HTTP {status}", status=status,
                                content_type=content_type)
        if 300 <= status < 400:
            raise TerminalError("http_4xx", f"HTTP {status} without a Location header", status=status,
                                content_type=content_type)
        limit = ROBOTS_MAX_BYTES if robots else s.max_bytes
        mtype = media_type(content_type)
        gzipped_xml = mtype in GZIP_TYPES and urlsplit(url).path.lower().endswith(".xml.gz")   # sitemap.xml.gz
        if not robots and mtype and mtype not in ACCEPTED_TYPES and not gzipped_xml:
            raise TerminalError("not_html", f"content type {mtype}", status=status, content_type=content_type)
        declared = response.headers.get("content-length")
        if not robots and declared and declared.isdigit() and int(declared) > limit:
            raise TerminalError("too_large", f"Content-Length {declared} > max_bytes {limit}", status=status,
                                content_type=content_type)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            self.stats.bytes_received += len(chunk)
            if size > limit:
                if robots:   # RFC 9309: parse what fits
                    chunks.append(chunk[: len(chunk) - (size - limit)])
                    break
                raise TerminalError("too_large", f"body passed max_bytes {limit} while streaming", status=status,
                                    content_type=content_type, nbytes=size)
            chunks.append(chunk)
        answer.body = b"".join(chunks)
        if gzipped_xml and not robots:
            answer.body = _gunzip(answer.body, limit, status, content_type)
        if not robots and not mtype and answer.body and not _looks_like_markup(answer.body):
            raise TerminalError("not_html", "no content type and the body is not markup", status=status, nbytes=size)
        return answer
