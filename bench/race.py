"""The crawl on the user's path: `sieve crawl demo` as a user runs it, raced against a Scrapy pipeline.

Each run is a whole process started from scratch, measured from spawn to exit (imports, Prefect's
start-up and teardown, every child included; bench/tree.py says how), its exit code checked, and the
rows it stored checked against the demo site's truth (bench/truth.py). The demo site runs in its own
process with a per-response latency. Contenders alternate order run by run on the same site; a ratio
is the median of per-run ratios. Three parts:

- race: pages/s, wall, CPU s of the whole tree, cores busy (= CPU s / wall s), peak RSS, rows, at
  each size (default 500 and 5,000 articles, 5 ms latency, concurrency 16 for every contender);
- rss: sieve's peak RSS over a series of sizes (default 1,000 to 20,000 articles; flat is the target);
- fixed: `sieve crawl demo --max-pages 1` wall without a Prefect server and with a running one
  (targets < 5 s and < 3 s), interleaved.

`sieve+server` is the same CLI with PREFECT_API_URL naming a `prefect server start` the bench runs on
127.0.0.1 for the whole race (drop it from --contenders to race with no server process around).

    python -m bench.race [--articles 500,5000] [--runs 3] [--latency-ms 5] [--concurrency 16]
                         [--parts race,rss,fixed] [--rss-sizes 1000,5000,20000] [--fixed-runs 5]
                         [--contenders sieve,sieve+server,scrapy] [--fresh]

Prints the tables and writes bench/out/race.json (after every part, so an interrupted bench keeps
what it measured); parts not run now are kept from the previous race.json, each with the command and
commit that measured it (`--fresh` drops them). Exits 1 when a sieve run exited non-zero or stored
wrong rows.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import contenders as c
from bench.common import OUT, DemoServerProcess, git_state, median, read_json, spread, write_json
from bench.render_race import render
from bench.tree import run_tree
from bench.truth import check_rows, verdict_text
from demo import DemoSite

TARGET_SPEEDUP = {500: 1.5, 5000: 2.0}     # issue 12: >= 1.5x at 500 articles, >= 2x at 5,000
TARGET_CORES = 1.6                          # at 5,000 articles
TARGET_FIXED_S = {"no server": 5.0, "running server": 3.0}
RSS_TOLERANCE = 0.20
FIXED_SITE_ARTICLES = 60


def prefect_home() -> Path:
    """The user's PREFECT_HOME: the caller's if set, else one the bench keeps (migrated once, then warm)."""
    return Path(os.environ.get("PREFECT_HOME") or OUT / "prefect_home_user")


def _scratch(prefix: str) -> Path:
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=OUT / "tmp"))


def run_contender(name: str, base: str, site: DemoSite, *, concurrency: int, api_url: str | None = None,
                  max_pages: int | None = None, check: bool = True) -> dict[str, Any]:
    """One whole-process run of a contender against the site at `base`; its measures and its rows' check."""
    folder = _scratch(f"{name.replace('+', '-')}-")
    try:
        if name == "scrapy":
            db = folder / "scrapy.duckdb"
            run = run_tree(c.scrapy_command(base, db, concurrency=concurrency, max_pages=max_pages), env=c.scrapy_env())
            pages = c.scrapy_pages(run.stdout)
        else:
            config = c.write_sieve_config(base, folder, concurrency=concurrency)
            db = folder / "sieve.duckdb"
            env = c.user_env(prefect_home(), api_url if name == "sieve+server" else None)
            run = run_tree(c.sieve_command(config, max_pages=max_pages), env=env)
            pages = c.sieve_pages(db)
        result = {"contender": name, **run.as_dict(), "pages": pages}
        result["exit_ok"] = run.returncode == 0
        result["cpu_groups"] = cpu_groups(run.cpu_by_process)
        result["rss_groups"] = cpu_groups(run.rss_by_process)
        if name != "scrapy":
            result["crawl_duration_s"] = _crawl_duration(run.stdout)
        result["pages_per_s"] = round(pages / run.wall_s, 1) if pages and run.wall_s else None
        if check:
            result["check"] = check_rows(db, site)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cpu_groups(cpu_by_process: dict[str, float]) -> dict[str, float]:
    """Sum per kind of process in a sieve tree (by command line): the CLI, Prefect's server, workers.

    Used for CPU seconds and for peak RSS (each process's own peak, summed per kind)."""
    groups = {"CLI process": 0.0, "Prefect flow run process": 0.0, "Prefect temporary server": 0.0,
              "extraction workers": 0.0, "other": 0.0}
    for key, cpu in cpu_by_process.items():
        cmdline = key.split(": ", 1)[1] if ": " in key else key
        if "sieve-flow-run" in cmdline or "flows.flow_child" in cmdline:
            groups["Prefect flow run process"] += cpu
        elif "uvicorn" in cmdline or "prefect" in cmdline and "server" in cmdline:
            groups["Prefect temporary server"] += cpu
        elif "forkserver" in cmdline or "spawn_main" in cmdline or "multiprocessing" in cmdline:
            groups["extraction workers"] += cpu
        elif "sieve" in cmdline or "scrapy_spider" in cmdline:
            groups["CLI process"] += cpu
        else:
            groups["other"] += cpu
    return {k: round(v, 3) for k, v in groups.items()}


def _crawl_duration(stdout: str) -> float | None:
    """The crawl's own duration from sieve's summary table ("duration (s)"), if the summary has one."""
    match = re.search(r"duration \(s\)\D*?([\d.]+)", stdout)
    return float(match.group(1)) if match else None


def _line(r: dict[str, Any]) -> str:
    rows = f"rows: {verdict_text(r['check'])}" if "check" in r else "rows not checked"
    return (f"{r['contender']}: exit {r['returncode']}, {r['pages']} pages in {r['wall_s']} s = {r['pages_per_s']} pages/s, "
            f"CPU {r['cpu_s']} s ({r['cores_busy']} cores; machine {r['machine_busy']}), peak RSS {r['peak_rss_mb']} MB, {rows}"
            + (f", then {r['background_s']} s and {r['background_cpu_s']} CPU s recording in the background"
               if r.get("background_s") else "")
            + (f", LEFT BEHIND {r['leftovers']}" if r["leftovers"] else "") + f" (load {r['load_before']})")


def _stats(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [r[key] for r in runs if r.get(key) is not None]
    return {"median": round(median(values), 3) if values else None,
            "min_max": [round(v, 3) for v in spread(values)] if values else None}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if r["exit_ok"]]
    summary = {key: _stats(good, key) for key in ("pages_per_s", "wall_s", "cpu_s", "cores_busy", "peak_rss_mb",
                                                  "first_stdout_s", "crawl_duration_s", "background_s",
                                                  "background_cpu_s", "machine_busy")}
    for groups in ("cpu_groups", "rss_groups"):
        summary[groups] = {group: round(median([r[groups][group] for r in good]), 3)
                           for group in (good[0].get(groups, {}) if good else {})}
    summary.update(runs=len(runs), failed_runs=len(runs) - len(good),
                   pages=good[0]["pages"] if good else None,
                   stored=[r.get("check", {}).get("stored") for r in runs],
                   rows_ok=all(r.get("check", {}).get("ok") for r in runs),
                   leftovers=sum(len(r["leftovers"]) for r in runs))
    return summary


def race(sizes: list[int], runs: int, names: list[str], *, latency_ms: float, concurrency: int,
         api_url: str | None) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        site = DemoSite(size)
        with DemoServerProcess(size, latency_ms=latency_ms) as server:
            print(f"race: {size:,} articles ({site.n_list_pages + size:,} pages), {latency_ms:g} ms latency, "
                  f"concurrency {concurrency}, {runs} runs", flush=True)
            by_name: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for run in range(runs):
                order = names[run % len(names):] + names[:run % len(names)]
                for name in order:
                    r = run_contender(name, server.base_url, site, concurrency=concurrency, api_url=api_url)
                    r["run"] = run + 1
                    by_name[name].append(r)
                    print(f"  run {run + 1} {_line(r)}", flush=True)
        point: dict[str, Any] = {"articles": size, "pages_expected": site.n_list_pages + size,
                                 "contenders": {n: {"summary": summarise(rs), "runs": rs} for n, rs in by_name.items()}}
        if "scrapy" in by_name:
            for name in names:
                if name == "scrapy":
                    continue
                ratios = [s["pages_per_s"] / b["pages_per_s"] for s, b in zip(by_name[name], by_name["scrapy"], strict=True)
                          if s["exit_ok"] and b["exit_ok"] and s["pages_per_s"] and b["pages_per_s"]]
                point["contenders"][name]["summary"]["speedup"] = round(median(ratios), 3) if ratios else None
                point["contenders"][name]["summary"]["speedup_runs"] = [round(x, 3) for x in ratios]
        results.append(point)
    return results


def rss_series(sizes: list[int], runs: int, *, latency_ms: float, concurrency: int) -> dict[str, Any]:
    points = []
    for size in sizes:
        site = DemoSite(size)
        with DemoServerProcess(size, latency_ms=latency_ms) as server:
            outs = []
            for run in range(runs):
                outs.append(run_contender("sieve", server.base_url, site, concurrency=concurrency))
                print(f"  rss {size:,} articles, run {run + 1}: {_line(outs[-1])}", flush=True)
        points.append({"articles": size, "summary": summarise(outs), "runs": outs})
    return {"points": points, **rss_growth(points)}


def rss_growth(points: list[dict[str, Any]]) -> dict[str, Any]:
    """How peak RSS grows over the sizes, two ways. The tree's peak is a sum of RSS at one instant, so it
    depends on whether the processes' peaks overlap: a crawl over before Prefect's server answered exits
    before the server and the flow process reach theirs (they record it after), and its tree peaks lower
    for that, not for being small. The sum of each process's own peak does not depend on timing (an
    upper bound of what the tree needs at once): the verdict reads it; the tree's growth is kept beside it."""
    def growth(values: list[float]) -> float | None:
        return round(max(values) / min(values) - 1, 3) if values else None

    tree = growth([p["summary"]["peak_rss_mb"]["median"] for p in points if p["summary"]["peak_rss_mb"]["median"]])
    own = growth([sum(p["summary"]["rss_groups"].values()) for p in points if p["summary"].get("rss_groups")])
    return {"rss_growth": tree, "own_peaks_growth": own, "flat": own is not None and own <= RSS_TOLERANCE,
            "tolerance": RSS_TOLERANCE}


def fixed_cost(runs: int, *, latency_ms: float, concurrency: int, server: c.PrefectServer) -> dict[str, Any]:
    site = DemoSite(FIXED_SITE_ARTICLES)
    modes = {"no server": None, "running server": server.api_url}
    by_mode: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    with DemoServerProcess(FIXED_SITE_ARTICLES, latency_ms=latency_ms) as demo:
        for run in range(runs):
            for mode in (list(modes) if run % 2 == 0 else list(modes)[::-1]):
                name = "sieve+server" if modes[mode] else "sieve"
                r = run_contender(name, demo.base_url, site, concurrency=concurrency, api_url=modes[mode],
                                  max_pages=1, check=False)
                by_mode[mode].append(r)
                teardown = round(r["wall_s"] - r["first_stdout_s"], 3) if r["first_stdout_s"] else None
                r["after_summary_s"] = teardown
                print(f"  fixed, {mode}, run {run + 1}: exit {r['returncode']}, {r['wall_s']} s "
                      f"(summary at {r['first_stdout_s']} s), CPU {r['cpu_s']} s, then {r['background_s']} s "
                      f"recording in the background (load {r['load_before']})", flush=True)
    result: dict[str, Any] = {"site_articles": FIXED_SITE_ARTICLES, "server_startup_s": server.startup_s, "modes": {}}
    for mode, rs in by_mode.items():
        summary = summarise(rs)
        summary["after_summary_s"] = _stats([r for r in rs if r["exit_ok"]], "after_summary_s")
        summary["target_s"] = TARGET_FIXED_S[mode]
        summary["target_met"] = (summary["wall_s"]["median"] or 1e9) < TARGET_FIXED_S[mode] and not summary["failed_runs"]
        result["modes"][mode] = {"summary": summary, "runs": rs}
    return result


def warm_up(latency_ms: float, concurrency: int, names: list[str], api_url: str | None) -> None:
    """Migrate the Prefect home once and bring every binary into the page cache (not measured)."""
    site = DemoSite(FIXED_SITE_ARTICLES)
    with DemoServerProcess(FIXED_SITE_ARTICLES, latency_ms=latency_ms) as server:
        for name in dict.fromkeys(["sieve", *names]):
            r = run_contender(name, server.base_url, site, concurrency=concurrency, api_url=api_url,
                              max_pages=20, check=False)
            print(f"  warm-up {name}: exit {r['returncode']} in {r['wall_s']} s", flush=True)
            if r["returncode"] != 0:
                raise SystemExit(f"warm-up of {name} failed (exit {r['returncode']}):\n{r['stderr'][-1500:]}")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", default="500,5000", help="site sizes of the race, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--parts", default="race,rss,fixed")
    parser.add_argument("--contenders", default="sieve,sieve+server,scrapy", help=f"from {', '.join(c.CONTENDERS)}")
    parser.add_argument("--rss-sizes", default="1000,5000,20000")
    parser.add_argument("--rss-runs", type=int, default=1)
    parser.add_argument("--fixed-runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="race at 500 articles, 2 runs; rss 1,000 and 2,000; 3 fixed runs")
    parser.add_argument("--fresh", action="store_true",
                        help="do not keep the parts not run now from the previous bench/out/race.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.articles, args.runs, args.rss_sizes, args.fixed_runs = "500", 2, "1000,2000", 3
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    if bad := [p for p in parts if p not in ("race", "rss", "fixed")] + [n for n in names if n not in c.CONTENDERS]:
        parser.error(f"unknown part or contender: {', '.join(bad)}")
    payload: dict[str, Any] = {
        "benchmark": "race", "command": " ".join(["python -m bench.race", *(sys.argv[1:] if argv is None else argv)]),
        "latency_ms": args.latency_ms, "concurrency": args.concurrency, "runs": args.runs, "contenders": names,
        "described": c.describe(), "prefect_home": str(prefect_home()),
        "load_at_start": [round(v, 2) for v in os.getloadavg()],
        "targets": {"speedup": TARGET_SPEEDUP, "cores_busy": TARGET_CORES, "fixed_s": TARGET_FIXED_S,
                    "rss_tolerance": RSS_TOLERANCE},
    }
    previous = None if args.fresh else read_json("race")
    if previous:   # parts not run now stay as they were measured, with their own command and commit
        for part in ("race", "rss", "fixed"):
            if part not in parts and part in previous:
                payload[part] = previous[part]
                payload.setdefault("parts_meta", {})[part] = previous.get("parts_meta", {}).get(part) or {
                    "command": previous.get("command"), "git": previous.get("machine", {}).get("git"),
                    "measured_at": previous.get("machine", {}).get("measured_at")}

    def done(part: str) -> None:
        payload.setdefault("parts_meta", {})[part] = {
            "command": payload["command"], "git": git_state(),
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "load_at_end": [round(v, 2) for v in os.getloadavg()]}
        write_json("race", payload)

    with ExitStack() as stack:
        # A running Prefect server only while a part uses it: idle, it still takes CPU from the other contenders.
        server = stack.enter_context(c.PrefectServer()) if "sieve+server" in names else None
        if server:
            print(f"prefect server on {server.api_url} (healthy after {server.startup_s} s)", flush=True)
        api_url = server.api_url if server else None
        warm_up(args.latency_ms, args.concurrency, names, api_url)
        if "race" in parts:
            payload["race"] = race(_ints(args.articles), max(1, args.runs), names, latency_ms=args.latency_ms,
                                   concurrency=args.concurrency, api_url=api_url)
            done("race")
        if "rss" in parts:
            print(f"rss: sieve at {args.rss_sizes} articles", flush=True)
            payload["rss"] = rss_series(_ints(args.rss_sizes), max(1, args.rss_runs), latency_ms=args.latency_ms,
                                        concurrency=args.concurrency)
            done("rss")
        if "fixed" in parts:
            if server is None:
                server = stack.enter_context(c.PrefectServer())
                print(f"prefect server on {server.api_url} (healthy after {server.startup_s} s)", flush=True)
            print("fixed: sieve crawl demo --max-pages 1, without and with a running Prefect server", flush=True)
            payload["fixed"] = fixed_cost(max(1, args.fixed_runs), latency_ms=args.latency_ms,
                                          concurrency=args.concurrency, server=server)
            done("fixed")
    path = write_json("race", payload)
    print(render(payload))
    print(f"\nwrote {path}")
    failed = [r for point in payload.get("race", []) for n, cr in point["contenders"].items() if n != "scrapy"
              for r in cr["runs"] if not r["exit_ok"] or not r.get("check", {}).get("ok")]
    if failed:
        print(f"{len(failed)} sieve run(s) exited non-zero or stored wrong rows: the race is not valid", file=sys.stderr)
        raise SystemExit(1)
    return payload


if __name__ == "__main__":
    main()
