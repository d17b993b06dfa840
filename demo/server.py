"""Serving a DemoSite on 127.0.0.1: one thread per connection, optional latency, ETags and 304s.

Run it alone with `python -m demo --port 8765 --articles 60 [--latency-ms 5]`; the latency is a sleep in
the connection's own thread before each response, so slow responses overlap as a real site's do.
"""

from __future__ import annotations

import argparse
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from demo.site import DemoSite


class _DemoHTTPServer(ThreadingHTTPServer):
    request_queue_size = 1024  # a deep accept backlog: hundreds of crawler connections may open at once
    daemon_threads = True
    request_log: list[tuple[str, str]]  # (path, user agent), for tests


class _Handler(BaseHTTPRequestHandler):
    server: _DemoHTTPServer
    site: DemoSite
    latency_s: float = 0.0
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # keep-alive responses otherwise stall ~40 ms on delayed ACKs

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self.server.request_log.append((self.path, self.headers.get("User-Agent", "")))
        if self.latency_s:  # this connection's thread sleeps (GIL released): other requests go on
            time.sleep(self.latency_s)
        status, body, content_type = self.site.render(self.path)
        if status == 301:
            self.send_response(301)
            self.send_header("Location", content_type)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 200:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the crawler logs what matters
        pass


class DemoServer:
    """Serve a DemoSite on 127.0.0.1 in a background thread (one thread per connection). Port 0 picks a
    free port; `latency_s` delays every response by that much, as a distant site would."""

    def __init__(self, site: DemoSite, port: int = 0, host: str = "127.0.0.1", *, latency_s: float = 0.0) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must not be negative")
        handler = type("DemoHandler", (_Handler,), {"site": site, "latency_s": latency_s})
        self.httpd = _DemoHTTPServer((host, port), handler)
        self.httpd.request_log = []
        self.site = site
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="demo-site", daemon=True)

    @property
    def base_url(self) -> str:
        address = self.httpd.server_address  # (host, port): kept after the server closed, unlike the socket's
        return f"http://{str(address[0])}:{address[1]}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request served so far: (path with query, User-Agent). list.append is atomic in CPython."""
        return self.httpd.request_log

    def __enter__(self) -> DemoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the bundled demo aggregator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--articles", type=int, default=60)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every response (default 0)")
    args = parser.parse_args()
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    with DemoServer(DemoSite(args.articles), port=args.port, latency_s=args.latency_ms / 1000) as server:
        print(
            f"demo aggregator on {server.base_url}/list/1.html ({args.articles} articles, "
            f"{args.latency_ms:g} ms latency); Ctrl-C stops",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
