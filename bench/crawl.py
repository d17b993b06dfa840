"""End-to-end crawl of the demo site: sieve (directly and through Prefect) against Scrapy + trafilatura + DuckDB.

The demo site runs in its own process (`python -m demo`) on 127.0.0.1 with no delay; every
crawl runs in a fresh worker process whose whole tree (extraction pool, Prefect's server) is sampled
for peak RSS. Runs alternate sieve and Scrapy, and the speed-up is the median of per-run ratios.
Prefect: one worker measures the fixed start-up (temporary server) once, then alternates direct and
flow crawls, so Prefect's share beyond start-up is a ratio measured inside one process.

    python -m bench.crawl [--articles 5000] [--runs 5] [--prefect-runs 5] [--quick] [--no-prefect]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    OUT,
    PYTHON,
    DemoServerProcess,
    median,
    quiet_env,
    read_json,
    run_measured,
    spread,
    table,
    verdict,
    write_json,
)

TARGET_SPEEDUP = 1.5
TARGET_PREFECT_SHARE = 0.05
PREFECT_HOME = OUT / "prefect_home"


def _scratch() -> Path:
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="crawl-", dir=OUT / "tmp"))


def run_sieve(base: str, *, batch_size: int = 100, workers: int = 0, concurrency: int = 32,
              profile: Path | None = None, trace: bool = False) -> dict[str, Any]:
    folder = _scratch()
    try:
        cmd = [PYTHON, "-m", "bench.sieve_crawl", "direct", "--base", base, "--dir", str(folder),
               "--batch-size", str(batch_size), "--workers", str(workers), "--concurrency", str(concurrency)]
        if profile is not None:
            cmd += ["--profile", str(profile)]
        if trace:
            cmd += ["--trace"]
        result = run_measured(cmd)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result["pages_per_s"] = round(result["pages"] / result["wall_s"], 1)
    result["cpu_ms_per_page"] = round(1000 * result["cpu_s"] / max(1, result["pages"]), 2)
    return result


def run_scrapy(base: str, *, concurrency: int = 32) -> dict[str, Any]:
    folder = _scratch()
    try:
        result = run_measured([PYTHON, "-m", "bench.scrapy_spider", "--base", base, "--db", str(folder / "scrapy.duckdb"),
                               "--concurrency", str(concurrency)])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result["pages_per_s"] = round(result["pages"] / result["wall_s"], 1)
    result["cpu_ms_per_page"] = round(1000 * result["cpu_s"] / max(1, result["pages"]), 2)
    return result


def run_prefect(base: str, runs: int, *, batch_size: int = 100, workers: int = 0) -> dict[str, Any]:
    folder = _scratch()
    fresh_home = not (PREFECT_HOME / "prefect.db").exists()
    PREFECT_HOME.mkdir(parents=True, exist_ok=True)
    try:
        result = run_measured(
            [PYTHON, "-m", "bench.sieve_crawl", "prefect", "--base", base, "--dir", str(folder), "--runs", str(runs),
             "--batch-size", str(batch_size), "--workers", str(workers)],
            env=quiet_env({"PREFECT_HOME": str(PREFECT_HOME)}),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    direct = [r["wall_s"] for r in result["direct"]]
    flow = [r["wall_s"] for r in result["prefect"]]
    pairs = [f / d - 1 for f, d in zip(flow, direct, strict=True)]
    direct_cpu = [r.get("tree_cpu_s", 0.0) for r in result["direct"]]
    flow_cpu = [r.get("tree_cpu_s", 0.0) for r in result["prefect"]]
    cpu_pairs = [f / d - 1 for f, d in zip(flow_cpu, direct_cpu, strict=True) if d]
    result.update(
        fresh_prefect_home=fresh_home,
        direct_wall_s=round(median(direct), 3),
        flow_wall_s=round(median(flow), 3),
        share=round(median(pairs), 4),
        share_runs=[round(p, 4) for p in pairs],
        share_of_medians=round(median(flow) / median(direct) - 1, 4),
        direct_cpu_s=round(median(direct_cpu), 3),
        flow_cpu_s=round(median(flow_cpu), 3),
        cpu_share=round(median(cpu_pairs), 4) if cpu_pairs else None,
        cpu_share_runs=[round(p, 4) for p in cpu_pairs],
        flow_pages_per_s=round(median([r["pages"] / r["wall_s"] for r in result["prefect"]]), 1),
    )
    return result


def summary(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [r[key] for r in runs]
    return {"median": round(median(values), 2), "min_max": [round(v, 2) for v in spread(values)]}


def bench_crawl(articles: int, runs: int, prefect_runs: int, *, concurrency: int = 32) -> dict[str, Any]:
    result: dict[str, Any] = {"articles": articles, "runs": runs, "concurrency": concurrency}
    with DemoServerProcess(articles) as server:
        print(f"crawl: demo site with {articles} articles on {server.base_url}", flush=True)
        sieve_runs, scrapy_runs = [], []
        for run in range(runs):
            order = ("sieve", "scrapy") if run % 2 == 0 else ("scrapy", "sieve")
            for name in order:
                if name == "sieve":
                    sieve_runs.append(run_sieve(server.base_url, concurrency=concurrency))
                    r = sieve_runs[-1]
                else:
                    scrapy_runs.append(run_scrapy(server.base_url, concurrency=concurrency))
                    r = scrapy_runs[-1]
                print(f"  run {run + 1} {name}: {r['pages']} pages in {r['wall_s']} s = {r['pages_per_s']} pages/s, "
                      f"peak RSS {r['peak_rss_mb']} MB, {r['articles']} articles stored", flush=True)
        ratios = [s["pages_per_s"] / c["pages_per_s"] for s, c in zip(sieve_runs, scrapy_runs, strict=True)]
        result["sieve"] = {"pages_per_s": summary(sieve_runs, "pages_per_s"), "peak_rss_mb": summary(sieve_runs, "peak_rss_mb"),
                           "wall_s": summary(sieve_runs, "wall_s"), "cpu_ms_per_page": summary(sieve_runs, "cpu_ms_per_page"),
                           "pages": sieve_runs[0]["pages"],
                           "articles": sieve_runs[0]["articles"], "import_s": sieve_runs[0]["import_s"],
                           "counts": sieve_runs[0]["counts"], "runs": sieve_runs}
        result["scrapy"] = {"pages_per_s": summary(scrapy_runs, "pages_per_s"), "peak_rss_mb": summary(scrapy_runs, "peak_rss_mb"),
                            "wall_s": summary(scrapy_runs, "wall_s"), "cpu_ms_per_page": summary(scrapy_runs, "cpu_ms_per_page"),
                            "pages": scrapy_runs[0]["pages"],
                            "articles": scrapy_runs[0]["articles"], "runs": scrapy_runs}
        result["speedup"] = round(median(ratios), 3)
        result["speedup_runs"] = [round(r, 3) for r in ratios]
        result["target_met"] = result["speedup"] >= TARGET_SPEEDUP
        if prefect_runs:
            print(f"  prefect: start-up, then {prefect_runs} direct/flow pairs ...", flush=True)
            p = run_prefect(server.base_url, prefect_runs)
            result["prefect"] = p
            result["prefect_target_met"] = p["share"] <= TARGET_PREFECT_SHARE
            print(f"  prefect: start-up {p['startup_s']} s, flow {p['flow_wall_s']} s vs direct {p['direct_wall_s']} s "
                  f"= {100 * p['share']:.1f}% share (CPU {p['cpu_share']}), peak RSS {p['peak_rss_mb']} MB", flush=True)
    return result


def render(r: dict[str, Any]) -> str:
    rows = [
        ["sieve (Pipeline, direct)", r["sieve"]["pages"], r["sieve"]["articles"], r["sieve"]["wall_s"]["median"],
         r["sieve"]["pages_per_s"]["median"], r["sieve"]["cpu_ms_per_page"]["median"], r["sieve"]["peak_rss_mb"]["median"],
         f"{r['speedup']:.2f}x"],
        ["Scrapy + trafilatura + DuckDB", r["scrapy"]["pages"], r["scrapy"]["articles"], r["scrapy"]["wall_s"]["median"],
         r["scrapy"]["pages_per_s"]["median"], r["scrapy"]["cpu_ms_per_page"]["median"], r["scrapy"]["peak_rss_mb"]["median"],
         "1.00x"],
    ]
    if "prefect" in r:
        p = r["prefect"]
        rows.append(["sieve via Prefect crawl flow", p["prefect"][0]["pages"], p["prefect"][0]["articles"], p["flow_wall_s"],
                     p["flow_pages_per_s"], "", f"{p['peak_rss_mb']} (whole worker, incl. server)", ""])
    text = table(["contender", "pages", "articles stored", "wall s (median)", "pages/s (median)", "CPU ms/page (all processes)",
                  "peak RSS MB (median)",
                  "speed-up vs Scrapy (median of per-run ratios)"], rows)
    text += f"\n\nTarget sieve >= {TARGET_SPEEDUP}x Scrapy on {os.cpu_count()} cores: {verdict(r['target_met'])}."
    if "prefect" in r:
        p = r["prefect"]
        where = f" (measured on the {r['prefect_articles']:,}-article site)" if r.get("prefect_articles") else ""
        text += (f"\nPrefect{where}: fixed start-up {p['startup_s']} s (temporary server, "
                 f"{'fresh' if p['fresh_prefect_home'] else 'already migrated'} PREFECT_HOME; imports {p['import_s']} s), "
                 f"then share of the crawl's wall time {100 * p['share']:.1f}% (median of per-pair ratios "
                 f"{[f'{100 * s:.1f}%' for s in p['share_runs']]}; ratio of the medians {100 * p.get('share_of_medians', 0):.1f}%)")
        if p.get("cpu_share") is not None:
            text += (f"; extra CPU of the whole process tree (Prefect server included) {100 * p['cpu_share']:.1f}% "
                     f"(median of pairs {[f'{100 * s:.1f}%' for s in p['cpu_share_runs']]}; "
                     f"{p['flow_cpu_s']} vs {p['direct_cpu_s']} CPU s)")
        text += f". Target <= 5%: {verdict(r['prefect_target_met'])}."
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prefect-runs", type=int, default=5)
    parser.add_argument("--no-prefect", action="store_true")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="1,000 articles, 5 runs")
    parser.add_argument("--prefect-from", type=Path, default=None,
                        help="with --no-prefect: keep the Prefect part of this earlier crawl JSON (its site size is stated)")
    parser.add_argument("--prefect-only", action="store_true",
                        help="rerun only the Prefect part and update bench/out/crawl.json (same article count)")
    args = parser.parse_args(argv)
    articles = 1000 if args.quick else args.articles
    if args.prefect_only:
        previous = read_json("crawl")
        if previous is None:
            raise SystemExit("no bench/out/crawl.json to update: run the full crawl benchmark first")
        with DemoServerProcess(previous["articles"]) as server:
            p = run_prefect(server.base_url, args.prefect_runs)
        previous.pop("machine", None)
        previous.update(prefect=p, prefect_target_met=p["share"] <= TARGET_PREFECT_SHARE)
        previous["prefect_command"] = " ".join(["python -m bench.crawl", *(sys.argv[1:] if argv is None else argv)])
        write_json("crawl", previous)
        print(render(previous))
        return previous
    result = bench_crawl(articles, max(1, args.runs), 0 if args.no_prefect else args.prefect_runs,
                         concurrency=args.concurrency)
    if args.prefect_from is not None and "prefect" not in result:
        earlier = json.loads(args.prefect_from.read_text(encoding="utf-8"))
        result.update(prefect=earlier["prefect"], prefect_target_met=earlier["prefect_target_met"],
                      prefect_articles=earlier["articles"], prefect_command=earlier.get("command"))
    payload = {"benchmark": "crawl", "command": " ".join(["python -m bench.crawl", *(sys.argv[1:] if argv is None else argv)]), **result}
    write_json("crawl", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
