"""Profile the hot paths once with pyinstrument and say where the time goes.

    python -m bench.profile [--quick]

1. extract: sieve's `extractors.extract` over the golden, demo and gne_silver_zh pages (one process, one core).
2. warehouse: `Warehouse.record_extractions` loading 10,000 synthetic articles in batches of 1,000.
3. crawl loop: the main process of a direct sieve crawl of a 1,000-article demo site (fetching, storing,
   waiting on the extraction pool; the pool's own time is what (1) shows).
Full trees go to bench/out/profile_*.txt; the JSON keeps the top functions and the time per package.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import OUT, DemoServerProcess, table, write_json
from bench.hotspots import hotspots


def _save(name: str, profiler: Any) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"profile_{name}.txt"
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    return path


def profile_extract(quick: bool) -> dict[str, Any]:
    from pyinstrument import Profiler

    from bench.extraction import pin_one_core
    from bench.pages import demo_set, evaldata_set, golden_set
    from extractors import extract

    pin_one_core()
    sets = [golden_set(), demo_set(60 if quick else 200), evaldata_set("gne_silver_zh", 20 if quick else None)]
    for s in sets:   # warm-up outside the profile
        for page in s.pages[:3]:
            extract(page.html, page.url, page.rules or s.rules, fetched_at=page.fetched_at)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    pages = 0
    for s in sets:
        for page in s.pages:
            extract(page.html, page.url, page.rules or s.rules, fetched_at=page.fetched_at)
            pages += 1
    profiler.stop()
    path = _save("extract", profiler)
    return {"what": f"extractors.extract over {pages} pages (golden + demo + gne_silver_zh)", "file": str(path.relative_to(OUT.parent.parent)),
            **hotspots(profiler.last_session)}


def profile_warehouse(quick: bool) -> dict[str, Any]:
    from pyinstrument import Profiler

    from bench.warehouse import synthetic_articles
    from warehouse import Warehouse

    n = 5000 if quick else 10_000
    rows = synthetic_articles(n)
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT / "tmp") as folder:
        wh = Warehouse(Path(folder) / "p.duckdb")
        wh.migrate()
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for i in range(0, n, 1000):
            wh.record_extractions(rows[i: i + 1000], [])
        profiler.stop()
    path = _save("warehouse", profiler)
    return {"what": f"Warehouse.record_extractions, {n:,} rows in batches of 1,000", "file": str(path.relative_to(OUT.parent.parent)),
            **hotspots(profiler.last_session)}


def profile_crawl(quick: bool) -> dict[str, Any]:
    from bench.crawl import run_sieve

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "profile_crawl.txt"
    with DemoServerProcess(500 if quick else 1000) as server:
        result = run_sieve(server.base_url, profile=path)
        traced = run_sieve(server.base_url, trace=True)
    spots = result.pop("hotspots", {})
    return {"what": f"main process of a direct sieve crawl ({result['pages']} pages, {result['wall_s']} s)",
            "file": str(path.relative_to(OUT.parent.parent)), **spots,
            "stages": {"pages": traced["pages"], "wall_s": traced["wall_s"], "rows": traced.get("trace", [])}}


def render(payload: dict[str, Any]) -> str:
    parts = []
    for name in ("extract", "warehouse", "crawl"):
        p = payload.get(name)
        if not p:
            continue
        parts.append(f"**{name}**: {p['what']}; {p.get('total_s', 0)} s profiled; full tree in `{p['file']}`.\n")
        parts.append(table(["package (self time)", "s", "%"], p.get("packages", [])[:10]))
        parts.append("")
        parts.append(table(["function (inclusive)", "s", "%"], p.get("inclusive", [])[:12]))
        parts.append("")
        if stages := p.get("stages"):
            parts.append(f"Wall time inside each layer's methods, second crawl without the profiler "
                         f"({stages['pages']} pages in {stages['wall_s']} s; per-request and per-batch rows overlap):\n")
            parts.append(table(["method", "calls", "wall s", "ms per call", "% of crawl wall"], stages["rows"]))
            parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="extract,warehouse,crawl")
    args = parser.parse_args(argv)
    payload: dict[str, Any] = {"benchmark": "profile", "tool": "pyinstrument", "command": " ".join(["python -m bench.profile", *(sys.argv[1:] if argv is None else argv)])}
    wanted = args.only.split(",")
    # the crawl first: profile_extract pins this process to one core, and children would inherit it
    if "crawl" in wanted:
        print("profile: crawl loop ...", flush=True)
        payload["crawl"] = profile_crawl(args.quick)
    if "warehouse" in wanted:
        print("profile: warehouse ...", flush=True)
        payload["warehouse"] = profile_warehouse(args.quick)
    if "extract" in wanted:
        print("profile: extract ...", flush=True)
        payload["extract"] = profile_extract(args.quick)
    write_json("profile", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
