"""What carries the Fetcher's requests under httpx's API: httpx's own transport (httpcore), or aiohttp's
through the `httpx-aiohttp` package. Chosen once per Fetcher from `CrawlSettings.transport`.

Why two: httpx/httpcore/anyio was about 31% of the crawl's CPU, all on the event loop (issue 12);
`bench/transport.py` measures both on the demo site, and the faster one is the default. Either way:

- the body reaches the Fetcher raw (no Content-Encoding undone): httpx's `aiter_raw`, and aiohttp with
  `auto_decompress=False`, so crawler/codings.py can bound the decoding itself;
- cookies live in the httpx client's bounded jar only: the aiohttp session keeps none (DummyCookieJar);
- politeness spacing counts from when the request headers are written: httpcore's per-request trace
  hook for httpx, aiohttp's `on_request_headers_sent` signal for aiohttp (`on_sent(url)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from crawler.settings import CrawlSettings


def build_transport(settings: CrawlSettings, on_sent: Callable[[str], None]) -> httpx.AsyncBaseTransport | None:
    """The transport for `settings.transport`; None means httpx's default (built by the client itself)."""
    if settings.transport == "httpx":
        return None
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    ssl_context = httpx.create_ssl_context(trust_env=settings.trust_env)

    async def headers_sent(session: Any, context: Any, params: Any) -> None:
        on_sent(str(params.url))

    def session() -> aiohttp.ClientSession:  # called on the first request, inside the running loop
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(headers_sent)
        connector = aiohttp.TCPConnector(limit=settings.concurrency, ssl=ssl_context, ttl_dns_cache=300)
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=settings.trust_env,
            trace_configs=[trace],
            auto_decompress=False,  # httpx-aiohttp also asks for it per request; both, so neither alone is relied on
            max_headers=512,  # aiohttp's 128 refuses a page setting 250 cookies; the bounded jar handles those
        )

    # verify: the same context, or the transport would build (and load CA certificates into) one more
    return AiohttpTransport(client=session, trust_env=settings.trust_env, verify=ssl_context)


def preload(settings: CrawlSettings) -> None:
    """Import what `build_transport` will need, now (a caller about to import other heavy modules in
    another thread does this first: two threads importing at once wait on each other's module locks)."""
    if settings.transport != "httpx":
        import aiohttp  # noqa: F401
        import httpx_aiohttp  # noqa: F401


def transport_errors(settings: CrawlSettings) -> tuple[type[BaseException], ...]:
    """Exceptions of the transport that mean the network failed (httpx-aiohttp leaves some unmapped)."""
    if settings.transport == "httpx":
        return ()
    import aiohttp

    return (aiohttp.ClientError,)


def is_timeout(exc: BaseException) -> bool:
    """True for a real timeout (ours, httpx's, aiohttp's), False for httpx-aiohttp's mapping of every other
    aiohttp connection error (a reset, a refused connect, a disconnect) to httpx.ConnectTimeout."""
    cause = exc.__cause__
    if isinstance(exc, httpx.TimeoutException) and isinstance(cause, Exception) and not isinstance(cause, TimeoutError):
        return not type(cause).__module__.startswith("aiohttp")
    return True
