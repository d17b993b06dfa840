"""How fast can the demo server itself go? The ceiling every crawler in the race shares.

The demo site is a Python ThreadingHTTPServer (a thread per connection) in its own process, on the
same cores as the crawlers. This fetches pages of a DemoSite(n) with a plain asyncio HTTP/1.1 client
(keep-alive, N connections, no parsing: far cheaper per request than any crawler) and reads the server
process's CPU seconds. With a latency L per response and N connections the ideal is N / L pages/s;
the table says how close the server gets, and the latency a lone request sees (one connection), so a
reader can tell the latency is applied and that requests overlap rather than queue.

    python -m bench.server [--articles 2000] [--runs 3] [--points 0:32,5:16,5:64,200:64,200:256]

A point is LATENCY_MS:CONNECTIONS. Defaults cover the race (5 ms at 16 to 64 connections) and issue
15's fleet benchmark (200 ms at high concurrency).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import psutil

from bench.common import DemoServerProcess, median, table, write_json

DEFAULT_POINTS = "0:32,5:1,5:16,5:64,200:64,200:256"


async def _fetch_all(port: int, paths: list[str], connections: int) -> tuple[int, list[float]]:
    """GET every path over `connections` keep-alive connections; (pages, seconds per request)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    done = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                sent = time.perf_counter()
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
                latencies.append(time.perf_counter() - sent)
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return done, latencies


def _paths(articles: int) -> list[str]:
    from demo import DemoSite

    site = DemoSite(articles)
    return [site.list_path(p) for p in range(1, site.n_list_pages + 1)] + [a.path for a in site.articles()]


def measure_point(articles: int, latency_ms: float, connections: int, runs: int) -> dict[str, Any]:
    paths = _paths(articles)
    # enough requests that each connection makes several (or ~3 s at the ideal rate), few enough that slow points stay short
    ideal = connections / (latency_ms / 1000) if latency_ms else float("inf")
    count = len(paths) if not latency_ms else int(min(len(paths), max(20 * connections, ideal * 3)))
    paths = paths[:count]
    rates, cpu_ms, p50, p99 = [], [], [], []
    with DemoServerProcess(articles, latency_ms=latency_ms) as server:
        proc = psutil.Process(server.proc.pid)
        asyncio.run(_fetch_all(server.port, paths[:50], 4))   # warm-up: caches, threads
        for _ in range(runs):
            cpu0 = sum(proc.cpu_times()[:2])
            start = time.perf_counter()
            n, lat = asyncio.run(_fetch_all(server.port, paths, connections))
            wall = time.perf_counter() - start
            rates.append(n / wall)
            cpu_ms.append(1000 * (sum(proc.cpu_times()[:2]) - cpu0) / n)
            lat.sort()
            p50.append(1000 * lat[len(lat) // 2])
            p99.append(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))])
    return {"latency_ms": latency_ms, "connections": connections, "pages": len(paths), "runs": runs,
            "pages_per_s": round(median(rates), 1), "ideal_pages_per_s": None if ideal == float("inf") else round(ideal, 1),
            "share_of_ideal": None if ideal == float("inf") else round(median(rates) / ideal, 3),
            "p50_ms": round(median(p50), 2), "p99_ms": round(median(p99), 2),
            "server_cpu_ms_per_page": round(median(cpu_ms), 3)}


def ceiling(articles: int, runs: int, points: list[tuple[float, int]]) -> dict[str, Any]:
    results = []
    for latency_ms, connections in points:
        r = measure_point(articles, latency_ms, connections, runs)
        results.append(r)
        print(f"  {latency_ms:g} ms x {connections} connections: {r['pages_per_s']} pages/s "
              f"(ideal {r['ideal_pages_per_s']}), p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
              f"server CPU {r['server_cpu_ms_per_page']} ms/page", flush=True)
    return {"articles": articles, "runs": runs, "points": results}


def render(r: dict[str, Any]) -> str:
    if "points" not in r:   # an older result: one point, no latency
        return table(["demo server alone", "pages", "pages/s (median)", "server CPU ms/page"],
                     [[f"{r['connections']} keep-alive connections, no parsing", r["pages"], r["pages_per_s"],
                       r["server_cpu_ms_per_page"]]])
    rows = [[f"{p['latency_ms']:g}", p["connections"], p["pages"], p["pages_per_s"], p["ideal_pages_per_s"] or "",
             f"{100 * p['share_of_ideal']:.0f}%" if p["share_of_ideal"] is not None else "", p["p50_ms"], p["p99_ms"],
             p["server_cpu_ms_per_page"]] for p in r["points"]]
    return table(["latency ms", "connections", "pages", "pages/s (median)", "ideal (connections / latency)",
                  "of ideal", "p50 ms per request", "p99 ms", "server CPU ms/page"], rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--points", default=DEFAULT_POINTS, help="LATENCY_MS:CONNECTIONS, comma-separated")
    parser.add_argument("--quick", action="store_true", help="1,000 articles")
    args = parser.parse_args(argv)
    points = [(float(p.split(":")[0]), int(p.split(":")[1])) for p in args.points.split(",") if p.strip()]
    result = ceiling(1000 if args.quick else args.articles, max(1, args.runs), points)
    payload = {"benchmark": "server", "command": " ".join(["python -m bench.server", *(sys.argv[1:] if argv is None else argv)]),
               **result}
    write_json("server", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
