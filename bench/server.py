"""How fast can the demo server itself go? The ceiling every crawler in bench.crawl shares.

The demo site is a Python ThreadingHTTPServer in its own process on the same cores as the crawlers.
This fetches every page of a DemoSite(n) with a plain asyncio HTTP/1.1 client (keep-alive, 32
connections, no parsing), and reads the server process's CPU seconds, median of the runs.

    python -m bench.server [--articles 2000] [--runs 5] [--connections 32]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import psutil

from bench.common import DemoServerProcess, median, table, write_json


async def _fetch_all(port: int, paths: list[str], connections: int) -> int:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    done = 0

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n".encode())
                await writer.drain()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return done


def ceiling(articles: int, runs: int, connections: int = 32) -> dict[str, Any]:
    from demo import DemoSite

    site = DemoSite(articles)
    paths = [site.list_path(p) for p in range(1, site.n_list_pages + 1)] + [a.path for a in site.articles()]
    rates, cpu_ms = [], []
    with DemoServerProcess(articles) as server:
        proc = psutil.Process(server.proc.pid)
        asyncio.run(_fetch_all(server.port, paths[:50], 4))   # warm-up
        for _ in range(runs):
            cpu0 = sum(proc.cpu_times()[:2])
            start = time.perf_counter()
            n = asyncio.run(_fetch_all(server.port, paths, connections))
            wall = time.perf_counter() - start
            rates.append(n / wall)
            cpu_ms.append(1000 * (sum(proc.cpu_times()[:2]) - cpu0) / n)
    return {"articles": articles, "pages": len(paths), "runs": runs, "connections": connections,
            "pages_per_s": round(median(rates), 1), "server_cpu_ms_per_page": round(median(cpu_ms), 2)}


def render(r: dict[str, Any]) -> str:
    return table(["demo server alone", "pages", "pages/s (median)", "server CPU ms/page"],
                 [[f"{r['connections']} keep-alive connections, no parsing", r["pages"], r["pages_per_s"],
                   r["server_cpu_ms_per_page"]]])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="1,000 articles")
    args = parser.parse_args(argv)
    result = ceiling(1000 if args.quick else args.articles, args.runs, args.connections)
    payload = {"benchmark": "server", "command": " ".join(["python -m bench.server", *(sys.argv[1:] if argv is None else argv)]),
               **result}
    write_json("server", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
