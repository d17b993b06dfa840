"""A real HTTP/1.1 server on 127.0.0.1 that misbehaves on request, and remembers every request.

    from tests.faultserver import FaultServer

    with FaultServer() as server:
        server.page("/a.html", "<html>…</html>")
        server.status_sequence("/flaky.html", [500, 500, 200], body="<html>ok</html>")
        server.robots("User-agent: *\\nDisallow: /private\\nCrawl-delay: 0.2\\n")
        ... fetch server.url("/a.html") ...
        assert server.max_in_flight <= 2
        assert not server.requests_for("/private/x.html")

Routes match the path with its query first, then the path alone; anything unknown is a 404.
Each request becomes a `RequestRecord` (path, headers, `time.monotonic()` at arrival and at the end,
requests in flight to this server when it arrived, status sent). The clock is the same one the
client's asyncio loop reads, so tests can compare spacing directly.

"The end" is taken just *before* the last bytes of the answer are written (`FaultHandler.finishing`,
which `send_body` calls): the client cannot have the whole answer, free its slot and send the next
request before then. Taking it after the write raced that: a server thread preempted between the write
and the clock read recorded `finished` after the client's next request had arrived (a false `4 <= 3`).
The `fault_server` pytest fixture yields a fresh server per test.
"""
from __future__ import annotations

import email.utils
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Route = Callable[["FaultHandler"], None]


@dataclass
class RequestRecord:
    method: str
    path: str                       # with query
    headers: dict[str, str]         # lowercased names
    started: float                  # time.monotonic() when the request line and headers were read
    in_flight: int                  # requests being handled by this server at that moment, this one included
    finished: float | None = None
    status: int | None = None

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, like real servers: the client reuses connections
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle + delayed ACK would add 40 ms each
    server: _Server
    record: RequestRecord

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        owner = self.server.owner
        # the connection's first request arrived when the connection did (dict.pop is atomic under the GIL)
        arrived = self.server.accepted.pop(self.request, None) or time.monotonic()
        self.record = owner._begin(self, arrived)
        try:
            route = owner._route(self.path)
            if route is None:
                self.send_body(404, b"not found", "text/plain")
            else:
                route(self)
        except (TimeoutError, ConnectionError, BrokenPipeError, OSError):
            self.close_connection = True
        finally:
            owner._end(self.record)

    do_HEAD = do_GET

    # ---- helpers for routes ----------------------------------------------------------------
    def send_body(
        self,
        status: int,
        body: bytes | str = b"",
        content_type: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.record.status = status
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(data)))
        if status == 304 or self.command == "HEAD" or not data:
            self.finishing()
            self.end_headers()
            return
        self.end_headers()
        self.finishing()
        self.wfile.write(data)

    def finishing(self) -> None:
        """The last bytes of the answer go out next: from here the request no longer counts as in flight."""
        self.server.owner._end(self.record)

    def wait(self, seconds: float) -> bool:
        """Sleep unless the server is shutting down or the client hung up; True if the full time passed.

        A client that hung up (its timeout) no longer holds the request, so from then it stops counting as
        in flight: `max_in_flight` is what the client had open at once, not the handlers still sleeping.
        """
        deadline = time.monotonic() + seconds
        stopping = self.server.owner._stopping
        while True:
            if stopping.is_set():
                return False
            if self._client_gone():
                self.server.owner._end(self.record)
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            stopping.wait(min(left, 0.02))

    def _client_gone(self) -> bool:
        """The client closed its end: the socket reads as end of file (a GET sends nothing after its headers)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), whatever was sent so far."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    owner: FaultServer
    accepted: dict[Any, float]   # socket -> when it was accepted, until its first request is recorded

    def handle_error(self, request: object, client_address: object) -> None:  # clients hang up on purpose
        pass

    def process_request(self, request: Any, client_address: Any) -> None:
        # Runs in the accepting thread, before a handler thread exists: the first request on a connection
        # counts as arriving here, not after the thread start (10-60 ms later on a loaded machine).
        self.accepted[request] = time.monotonic()
        super().process_request(request, client_address)


class FaultServer:
    """Start with `with FaultServer() as server:` (or .start()/.stop())."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, Route] = {}
        self._prefix_routes: list[tuple[str, Route]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.records: list[RequestRecord] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hits: Counter[str] = Counter()      # path (with query) -> requests
        self._floods = 0                          # cookie_flood answers so far
        self._httpd = _Server((host, 0), FaultHandler)
        self._httpd.owner = self
        self._httpd.accepted = {}
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> FaultServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`: the Host header and the crawler's host key."""
        return f"{self._httpd.server_address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # ---- what happened ---------------------------------------------------------------------
    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.records if r.path == path or r.path.split("?", 1)[0] == path]

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.records]

    def start_gaps(self, paths: Iterable[str] | None = None) -> list[float]:
        """Seconds between consecutive request arrivals (optionally only those for `paths`)."""
        wanted = set(paths) if paths is not None else None
        with self._lock:
            times = sorted(r.started for r in self.records if wanted is None or r.path in wanted)
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    def clear(self) -> None:
        with self._lock:
            self.records.clear()
            self.hits.clear()
            self.max_in_flight = 0

    def _begin(self, handler: FaultHandler, arrived: float) -> RequestRecord:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            record = RequestRecord(
                method=handler.command,
                path=handler.path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                started=arrived,
                in_flight=self.in_flight,
            )
            self.records.append(record)
            self.hits[handler.path] += 1
            return record

    def _end(self, record: RequestRecord) -> None:
        with self._lock:
            if record.finished is None:   # once: by `finishing()` before the last write, else when the route returns
                self.in_flight -= 1
                record.finished = time.monotonic()

    def _route(self, path: str) -> Route | None:
        found = self._routes.get(path) or self._routes.get(path.split("?", 1)[0])
        if found is None:
            found = next((route for prefix, route in self._prefix_routes if path.startswith(prefix)), None)
        return found

    # ---- routes ----------------------------------------------------------------------------
    def route(self, path: str, handler: Route) -> None:
        """Any behaviour: `handler(h)` gets the FaultHandler (h.send_body, h.wfile, h.reset, h.wait, h.headers)."""
        self._routes[path] = handler

    def route_prefix(self, prefix: str, handler: Route) -> None:
        """Every path starting with `prefix` (exact routes win); `h.path` says which one was asked."""
        self._prefix_routes.append((prefix, handler))

    def endless_pagination(self, prefix: str = "/pages/", *, articles_per_page: int = 3) -> str:
        """List pages `{prefix}N.html` that never end: each links to page N+1 and to a few articles
        `{prefix}a/N-K.html` (real article pages). Returns page 1's URL."""
        body = "".join(f"<p>这是一篇文章的第{i}段,讲的是一个在小城市开店的人和他的经历,足够长的正文。</p>" for i in range(12))

        def handler(h: FaultHandler) -> None:
            name = h.path.split("?", 1)[0][len(prefix):]
            if name.startswith("a/"):
                h.send_body(200, f"<html><head><title>文章 {name}</title></head><body><article><h1>文章 {name}</h1>"
                                 f"{body}</article></body></html>")
                return
            n = int(name.removesuffix(".html") or 1)
            links = "".join(f'<li><a href="{prefix}a/{n}-{k}.html">文章 {n}-{k}</a></li>' for k in range(articles_per_page))
            h.send_body(200, f"<html><body><ul>{links}</ul><a href=\"{prefix}{n + 1}.html\">下一页</a></body></html>")

        self.route_prefix(prefix, handler)
        return self.url(f"{prefix}1.html")

    def page(
        self,
        path: str,
        body: bytes | str,
        content_type: str | None = "text/html; charset=utf-8",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        """A static response. Returns the page's full URL."""
        self.route(path, lambda h: h.send_body(status, body, content_type, headers))
        return self.url(path)

    def robots(self, text: str, *, status: int = 200) -> None:
        self.page("/robots.txt", text, "text/plain", status=status)

    def status_sequence(
        self,
        path: str,
        statuses: list[int],
        body: bytes | str = "<html><body>ok</body></html>",
        *,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[int, dict[str, str]] | None = None,
    ) -> str:
        """Answer the n-th request with statuses[n] (the last one repeats): [500, 500, 200] = two failures."""
        counter = iter(range(10**9))

        def handler(h: FaultHandler) -> None:
            n = next(counter)
            status = statuses[min(n, len(statuses) - 1)]
            extra = (headers or {}).get(status)
            payload = body if 200 <= status < 300 else f"status {status}"
            h.send_body(status, payload, content_type, extra)

        self.route(path, handler)
        return self.url(path)

    def throttled(self, path: str, retry_after: str | float, times: int = 1, body: bytes | str = "<html>ok</html>") -> str:
        """429 with Retry-After `times` times, then 200. `retry_after` may be seconds or an HTTP-date string."""
        value = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        statuses = [429] * times + [200]
        return self.status_sequence(path, statuses, body, headers={429: {"Retry-After": value}})

    def slow(self, path: str, seconds: float, body: bytes | str = "<html>late</html>") -> str:
        """Wait `seconds` before answering at all (the client should time out first)."""

        def handler(h: FaultHandler) -> None:
            if h.wait(seconds):
                h.send_body(200, body)

        self.route(path, handler)
        return self.url(path)

    def drip(self, path: str, chunks: int, interval: float, chunk: bytes = b"<p>x</p>") -> str:
        """Headers at once, then a small chunk every `interval` seconds: no single read ever times out."""

        def handler(h: FaultHandler) -> None:
            h.record.status = 200
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(len(chunk) * chunks))
            h.end_headers()
            for _ in range(chunks):
                h.wfile.write(chunk)
                h.wfile.flush()
                if not h.wait(interval):
                    return

        self.route(path, handler)
        return self.url(path)

    def reset_mid_body(self, path: str, promised: int = 10_000, sent: bytes = b"<html><body>half") -> str:
        """Promise `promised` bytes, send a few, then reset the connection."""

        def handler(h: FaultHandler) -> None:
            h.record.status = 200
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(promised))
            h.end_headers()
            h.wfile.write(sent)
            h.reset()

        self.route(path, handler)
        return self.url(path)

    def close_without_answer(self, path: str) -> str:
        """Read the request, answer nothing, close: the client sees a disconnect, not a response."""
        self.route(path, lambda h: h.reset())
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.route(path, lambda h: h.send_body(status, b"", None, {"Location": location}))
        return self.url(path)

    def huge(self, path: str, size: int, *, declare_length: bool = True, chunk_size: int = 64 * 1024) -> str:
        """`size` bytes of HTML, written chunk by chunk (never built in memory). Without a declared
        length the body is sent chunked, so only counting while streaming can catch it."""
        block = b"<p>" + b"x" * (chunk_size - 7) + b"</p>\n"

        def handler(h: FaultHandler) -> None:
            h.record.status = 200
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            if declare_length:
                h.send_header("Content-Length", str(size))
            else:
                h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            left = size
            while left > 0:
                piece = block[: min(len(block), left)]
                left -= len(piece)
                if declare_length:
                    h.wfile.write(piece)
                else:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if not declare_length:
                h.wfile.write(b"0\r\n\r\n")

        self.route(path, handler)
        return self.url(path)

    def conditional(self, path: str, body: bytes | str, *, etag: str | None = None, last_modified: str | None = None) -> str:
        """200 with ETag/Last-Modified; 304 when the request's If-None-Match / If-Modified-Since match."""
        validators = {}
        if etag:
            validators["ETag"] = etag
        if last_modified:
            validators["Last-Modified"] = last_modified

        def handler(h: FaultHandler) -> None:
            inm = h.headers.get("If-None-Match")
            ims = h.headers.get("If-Modified-Since")
            if (etag and inm == etag) or (not inm and last_modified and ims == last_modified):
                h.send_body(304, b"", None, validators)
            else:
                h.send_body(200, body, "text/html; charset=utf-8", validators)

        self.route(path, handler)
        return self.url(path)

    def encoded(self, path: str, body: bytes, coding: str, content_type: str = "text/html; charset=utf-8") -> str:
        """`body` (already encoded by the test) sent as is, labelled `Content-Encoding: coding`."""
        return self.page(path, body, content_type, headers={"Content-Encoding": coding})

    def cookie_flood(self, path: str, count: int, value_size: int = 16, body: bytes | str = "<html>ok</html>") -> str:
        """`count` distinct Set-Cookie headers per answer (names differ per request, so a jar that keeps
        everything grows without end); also sets `session=<n>`, n counting the server's flood answers so far
        (on every flood route), a cookie that is only ever replaced."""

        def handler(h: FaultHandler) -> None:
            with self._lock:
                n = self._floods
                self._floods += 1
            data = body.encode("utf-8") if isinstance(body, str) else body
            h.record.status = 200
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Set-Cookie", f"session={n}; Path=/")
            for i in range(count):
                h.send_header("Set-Cookie", f"c{n}_{i}={'v' * value_size}; Path=/")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.finishing()
            h.wfile.write(data)

        self.route(path, handler)
        return self.url(path)


def http_date(seconds_from_now: float) -> str:
    """An RFC 7231 HTTP-date, for Retry-After and Last-Modified."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A fresh FaultServer per test. Import it into a test module: `from tests.faultserver import fault_server`."""
    with FaultServer() as server:
        yield server
