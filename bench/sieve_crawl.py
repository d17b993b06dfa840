"""Worker processes that crawl the demo site with sieve, so each run's memory and CPU are its own.

    python -m bench.sieve_crawl direct  --base URL --dir DIR [--batch-size 100] [--workers 0]
    python -m bench.sieve_crawl prefect --base URL --dir DIR --runs 5

`direct` drives flows.pipeline.Pipeline without Prefect. `prefect` first runs an empty flow (Prefect's
fixed start-up: the temporary server), then alternates a direct crawl and the Prefect `crawl` flow on
fresh warehouses, so Prefect's share is a ratio measured in one process. Each prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import ROOT, cpu_seconds

CONCURRENCY = 32


def write_config(base: str, folder: Path, *, concurrency: int = CONCURRENCY) -> Path:
    """config.yaml's demo source pointed at `base`, no politeness delay, a warehouse in `folder`."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    config["warehouse"]["path"] = str(folder / "sieve.duckdb")
    config["crawl"].update({"delay_seconds": 0.0, "concurrency": concurrency, "per_host_concurrency": min(64, concurrency),
                            "retries": 1, "timeout_seconds": 60})
    demo = config["sources"]["demo"]
    demo["start_urls"] = [f"{base}/list/1.html"]
    demo["crawl"] = {"delay_seconds": 0.0, "per_host_concurrency": min(64, concurrency)}
    config["sources"] = {"demo": demo}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _stored(db: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM articles").fetchall()[0][0])
    finally:
        con.close()


def _pages(counts: dict[str, Any]) -> int:
    return int(counts.get("fetched", 0)) + int(counts.get("unchanged", 0)) + int(counts.get("failed", 0))


async def _direct(config_path: Path, batch_size: int, workers: int) -> dict[str, Any]:
    from flows.config import load_config
    from flows.pipeline import Pipeline, PipelineOptions

    config = load_config(config_path)
    options = PipelineOptions(batch_size=batch_size, extract_workers=workers)
    cpu0, start = cpu_seconds(), time.perf_counter()
    pipeline = Pipeline(config, "demo", options=options)
    async with pipeline:
        counts = await pipeline.crawl()
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    result = counts.as_dict()
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "cpu_before_s": round(cpu0, 3), "pages": _pages(result), "counts": result,
            "articles": _stored(config.warehouse.path)}


def run_direct(base: str, folder: Path, batch_size: int, workers: int, concurrency: int,
               trace: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    import flows.pipeline  # noqa: F401  (import cost reported apart from the crawl)

    imports = time.perf_counter() - t0
    if trace:
        from bench import trace as tracer

        tracer.install()
    config_path = write_config(base, folder, concurrency=concurrency)
    result = asyncio.run(_direct(config_path, batch_size, workers))
    if trace:
        result["trace"] = tracer.report(result["wall_s"])
    result.update(contender="sieve", import_s=round(imports, 3), batch_size=batch_size, workers=workers,
                  concurrency=concurrency)
    return result


def run_prefect(base: str, folder: Path, runs: int, batch_size: int, workers: int, concurrency: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    from prefect import flow

    import flows.crawl as crawl_flows
    from flows.pipeline import PipelineOptions

    imports = time.perf_counter() - t0

    @flow(name="bench-noop", persist_result=False)
    def noop() -> int:
        return 1

    from bench.common import TreeSampler

    sampler = TreeSampler(os.getpid()).__enter__()   # CPU of the whole tree (Prefect's server, the pool) per crawl
    t0 = time.perf_counter()
    noop()
    startup = time.perf_counter() - t0
    from flows.early import RunHooks, run_hooks

    options = PipelineOptions(batch_size=batch_size, extract_workers=workers)   # reaches the flow through its hooks
    direct, via_prefect = [], []
    for run in range(runs):
        for mode in (("direct", "prefect") if run % 2 == 0 else ("prefect", "direct")):
            config_path = write_config(base, folder / f"{mode}{run}", concurrency=concurrency)
            time.sleep(0.2)
            cpu0 = sampler.cpu_s
            if mode == "direct":
                out = asyncio.run(_direct(config_path, batch_size, workers))
                time.sleep(0.2)   # let the sampler see the pool's last CPU
                out["tree_cpu_s"] = round(sampler.cpu_s - cpu0, 3)
                direct.append(out)
            else:
                start = time.perf_counter()
                with run_hooks(RunHooks(options=options)):
                    summary = asyncio.run(crawl_flows.crawl(source="demo", config_path=str(config_path)))
                wall = time.perf_counter() - start
                time.sleep(0.2)
                via_prefect.append({"wall_s": round(wall, 3), "tree_cpu_s": round(sampler.cpu_s - cpu0, 3),
                                    "pages": _pages(summary), "articles": _stored(folder / f"{mode}{run}" / "sieve.duckdb")})
    sampler.__exit__(None, None, None)
    return {"contender": "sieve+prefect", "import_s": round(imports, 3), "startup_s": round(startup, 3),
            "direct": direct, "prefect": via_prefect, "batch_size": batch_size, "workers": workers}


def main() -> None:
    parser = argparse.ArgumentParser(description="sieve crawl worker for the benchmarks")
    parser.add_argument("mode", choices=["direct", "prefect"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0, help="extraction processes (0: one per core)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument profile of this process here")
    parser.add_argument("--trace", action="store_true", help="wall seconds inside each Warehouse/Fetcher/Pipeline method")
    args = parser.parse_args()
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled", interval=0.002)
        profiler.start()
    if args.mode == "direct":
        result = run_direct(args.base, args.dir, args.batch_size, args.workers, args.concurrency, args.trace)
    else:
        result = run_prefect(args.base, args.dir, args.runs, args.batch_size, args.workers, args.concurrency)
    if profiler is not None:
        profiler.stop()
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        args.profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
        from bench.hotspots import hotspots

        result["hotspots"] = hotspots(profiler.last_session)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
