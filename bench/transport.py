"""Which transport should carry the Fetcher's requests: httpx's own (httpcore) or aiohttp's (httpx-aiohttp)?

The whole Fetcher (politeness, robots.txt, bounded decoding, cookies) fetches every article of the demo
site (`python -m demo` in its own process on 127.0.0.1) at concurrency 16 and 64, once per transport per
round, the order alternating between rounds so neither always runs on a warmer machine. Reported per
transport and concurrency: client CPU ms per request (this process's CPU only: the server's is its own)
and pages/s, the median of the rounds, and aiohttp/httpx ratios from the same rounds. The load average
is printed beside the numbers: the machine is shared.

    python -m bench.transport [--articles 1500] [--rounds 5] [--concurrency 16 64]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from bench.common import DemoServerProcess, median, table, write_json
from crawler import CrawlSettings, Fetcher
from demo import DemoSite

TRANSPORTS = ("httpx", "aiohttp")


async def _crawl(base: str, paths: list[str], transport: str, concurrency: int) -> tuple[float, float, int]:
    settings = CrawlSettings(
        transport=transport, concurrency=concurrency, per_host_concurrency=min(concurrency, 64),
        delay_seconds=0.0, retries=0, timeout_seconds=30,
    )
    async with Fetcher(settings, ("127.0.0.1",)) as fetcher:
        await fetcher.fetch(base + paths[0])   # robots.txt and the first connection: not measured
        cpu0, wall0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(fetcher.fetch(base + p) for p in paths))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    bad = [r for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"{transport}: {len(bad)} fetches failed, first: {bad[0].error} {bad[0].detail}")
    return wall, cpu, len(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args(argv)

    paths = [DemoSite.article_path(n) for n in range(1, args.articles + 1)]
    samples: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    load_before = os.getloadavg()
    with DemoServerProcess(args.articles) as server:
        for transport in TRANSPORTS:   # warm-up: imports, the server's first threads
            asyncio.run(_crawl(server.base_url, paths[:200], transport, 16))
        for round_ in range(args.rounds):
            order = TRANSPORTS if round_ % 2 == 0 else TRANSPORTS[::-1]
            for concurrency in args.concurrency:
                for transport in order:
                    got = asyncio.run(_crawl(server.base_url, paths, transport, concurrency))
                    samples.setdefault((transport, concurrency), []).append(got)
                    print(f"round {round_ + 1} c={concurrency} {transport}: {got[2] / got[0]:.0f} pages/s, "
                          f"{got[1] / got[2] * 1000:.2f} ms CPU/request", file=sys.stderr)
    load_after = os.getloadavg()

    rows: list[list[Any]] = []
    result: dict[str, Any] = {"articles": args.articles, "rounds": args.rounds,
                              "load_before": load_before, "load_after": load_after, "runs": {}}
    for concurrency in args.concurrency:
        per: dict[str, tuple[float, float]] = {}
        for transport in TRANSPORTS:
            runs = samples[(transport, concurrency)]
            cpu_ms = median([cpu / n * 1000 for _, cpu, n in runs])
            rate = median([n / wall for wall, _, n in runs])
            per[transport] = (cpu_ms, rate)
            result["runs"][f"{transport}@{concurrency}"] = {"cpu_ms_per_request": cpu_ms, "pages_per_s": rate,
                                                           "samples": runs}
            rows.append([concurrency, transport, cpu_ms, rate])
        # ratios within each round (same machine state), then their median
        pairs = list(zip(samples[("aiohttp", concurrency)], samples[("httpx", concurrency)], strict=True))
        cpu_ratio = median([(a[1] / a[2]) / (h[1] / h[2]) for a, h in pairs])
        rate_ratio = median([(a[2] / a[0]) / (h[2] / h[0]) for a, h in pairs])
        result["runs"][f"ratio@{concurrency}"] = {"cpu": cpu_ratio, "pages_per_s": rate_ratio}
        rows.append([concurrency, "aiohttp / httpx", cpu_ratio, rate_ratio])
    print(table(["concurrency", "transport", "client CPU ms/request", "pages/s"], rows))
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores); "
          f"{args.articles} articles, {args.rounds} rounds, median")
    path = write_json("transport", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
