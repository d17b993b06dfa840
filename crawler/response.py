"""One HTTP answer read into a `Response`: status to error kind, content-type and size checks, and the
body streamed raw through crawler/codings.py, so `limit` counts decoded bytes of every Content-Encoding
layer and no layer ever makes more than that. Raises the crawler's errors (crawler/errors.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from crawler.codings import CodingError, ContentDecoder, LayerTooLarge, parse_codings
from crawler.errors import SieveCrawlError, fetch_error
from crawler.retry import parse_retry_after, status_kind

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
XML_TYPES = frozenset(
    {
        "application/xml",
        "text/xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/x-rss+xml",
        "application/x-atom+xml",
    }
)
ACCEPTED_TYPES = HTML_TYPES | XML_TYPES
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/octet-stream"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
YIELD_EVERY = 1 << 20  # decoded bytes between two yields to the event loop: one body never holds it for long


@dataclass
class Response:
    """What one request produced, body already read (or None for redirects and 304)."""

    url: str
    status: int
    headers: httpx.Headers
    content_type: str | None
    body: bytes | None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _looks_like_markup(body: bytes) -> bool:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<", b"\xff\xfe<", b"\xfe\xff\x00<"))


async def read_response(
    url: str, response: httpx.Response, limit: int, *, robots: bool, on_raw: Callable[[int], None]
) -> Response:
    """Check and read one answer. robots.txt skips the type checks and is cut at `limit` instead of refused;
    `on_raw(n)` hears every raw chunk's size (bytes on the wire)."""
    status = response.status_code
    content_type = response.headers.get("content-type")
    answer = Response(url, status, response.headers, content_type, None)
    if status in REDIRECT_STATUSES and "location" in response.headers:
        return answer
    if status == 304:
        return answer
    if status >= 400:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise fetch_error(
            status_kind(status), f"HTTP {status}", status=status, retry_after=retry_after, content_type=content_type
        )
    if 300 <= status < 400:
        raise fetch_error(
            "http_4xx", f"HTTP {status} without a Location header", status=status, content_type=content_type
        )
    mtype = media_type(content_type)
    gzipped_xml = mtype in GZIP_TYPES and urlsplit(url).path.lower().endswith(".xml.gz")  # sitemap.xml.gz
    if not robots and mtype and mtype not in ACCEPTED_TYPES and not gzipped_xml:
        raise fetch_error("not_html", f"content type {mtype}", status=status, content_type=content_type)
    declared = response.headers.get("content-length")
    if not robots and declared and declared.isdigit() and int(declared) > limit:
        raise fetch_error(
            "too_large", f"Content-Length {declared} > max_bytes {limit}", status=status, content_type=content_type
        )
    try:
        codings = parse_codings(response.headers.get("content-encoding"))
    except CodingError as exc:
        raise fetch_error("decode", str(exc), status=status, content_type=content_type) from None
    if gzipped_xml and not robots:
        codings = ["gzip", *codings]  # the file itself is gzip: the first coding applied
    body = await _read_body(
        response,
        ContentDecoder(codings, limit),
        limit,
        robots=robots,
        on_raw=on_raw,
        status=status,
        content_type=content_type,
    )
    answer.body = body
    if not robots and not mtype and body and not _looks_like_markup(body):
        raise fetch_error("not_html", "no content type and the body is not markup", status=status, nbytes=len(body))
    return answer


async def _read_body(
    response: httpx.Response,
    decoder: ContentDecoder,
    limit: int,
    *,
    robots: bool,
    on_raw: Callable[[int], None],
    status: int,
    content_type: str | None,
) -> bytes:
    """Raw bytes in, decoded bytes out, never more than `limit` of either kept or made. robots.txt is cut
    at the limit (RFC 9309: parse what fits); a page past it is `too_large`."""
    chunks: list[bytes] = []
    size = raw_size = since_yield = 0

    def too_large(what: str) -> SieveCrawlError:
        return fetch_error(
            "too_large",
            f"{what} passed max_bytes {limit} while streaming",
            status=status,
            content_type=content_type,
            nbytes=max(size, raw_size),
        )

    try:
        async for raw in response.aiter_raw():
            raw_size += len(raw)
            on_raw(len(raw))
            if raw_size > limit and not robots:
                raise too_large("body")
            for piece in decoder.feed(raw):
                size += len(piece)
                if size > limit:
                    if not robots:
                        raise too_large("body" if decoder.identity else "decoded body")
                    chunks.append(piece[: len(piece) - (size - limit)])
                    return b"".join(chunks)
                chunks.append(piece)
                since_yield += len(piece)
                if since_yield >= YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
            if raw_size > limit:  # robots.txt: enough read
                break
    except CodingError as exc:
        raise fetch_error("decode", str(exc), status=status, content_type=content_type, nbytes=size) from None
    except LayerTooLarge as exc:
        if not robots:
            raise fetch_error("too_large", str(exc), status=status, content_type=content_type, nbytes=size) from None
    return b"".join(chunks)
