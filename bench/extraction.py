"""Extraction throughput on one core: sieve's `extractors.extract` against `trafilatura.extract` (defaults).

Both get the same decoded string for every page. Each run times one pass of each extractor over the
whole set, in alternating order; pages/s is the median over runs, and the speed-up is the median of
the per-run ratios (the two passes of a run share the machine's mood). F1 comes from the first run.

    python -m bench.extraction [--runs 5] [--quick] [--sets golden,demo,gne_silver_zh,scrapinghub_aeb]
"""
from __future__ import annotations

import argparse
import sys
import os
import time
from collections.abc import Callable
from typing import Any

from bench.common import median, spread, table, verdict, write_json
from bench.pages import Page, PageSet, all_sets
from bench.scores import f1, metric_name

TARGET_SPEEDUP = 1.5


def pin_one_core() -> int | None:
    """Run on a single CPU so 'pages/s per core' means that (libraries may start helper threads)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def sieve_extractor(default_rules: Any) -> Callable[[Page], str | None]:
    """sieve's extract with the page's own rules (golden pages), else the set's (demo source), else global ones."""
    from extractors import Article, extract

    def run(page: Page) -> str | None:
        result = extract(page.html, page.url, page.rules or default_rules, fetched_at=page.fetched_at)
        return result.text if isinstance(result, Article) else None

    return run


def trafilatura_extractor() -> Callable[[Page], str | None]:
    import trafilatura

    def run(page: Page) -> str | None:
        return trafilatura.extract(page.html, url=page.url)

    return run


def one_pass(fn: Callable[[Page], str | None], page_set: PageSet) -> tuple[float, list[str | None]]:
    outputs = []
    start = time.perf_counter()
    for page in page_set.pages:
        outputs.append(fn(page))
    return time.perf_counter() - start, outputs


def bench_set(page_set: PageSet, runs: int) -> dict[str, Any]:
    contenders = {"sieve": sieve_extractor(page_set.rules), "trafilatura": trafilatura_extractor()}
    for fn in contenders.values():   # warm-up: imports, compiled regexes, lazy tables
        for page in page_set.pages[:3]:
            fn(page)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, list[str | None]] = {}
    ratios = []
    order = list(contenders)
    for run in range(runs):
        for name in (order if run % 2 == 0 else order[::-1]):
            elapsed, out = one_pass(contenders[name], page_set)
            times[name].append(elapsed)
            outputs.setdefault(name, out)
        ratios.append(times["trafilatura"][-1] / times["sieve"][-1])
    n = len(page_set.pages)
    result: dict[str, Any] = {"set": page_set.name, "pages": n, "mb": round(page_set.nbytes / 2**20, 2),
                              "note": page_set.note, "metric": metric_name(page_set.metric), "runs": runs}
    gold_pages = [i for i, p in enumerate(page_set.pages) if p.gold is not None]
    for name in contenders:
        rates = [n / t for t in times[name]]
        entry: dict[str, Any] = {"pages_per_s": round(median(rates), 2), "min_max": [round(v, 2) for v in spread(rates)],
                                 "ms_per_page": round(1000 * median(times[name]) / n, 2),
                                 "empty": sum(1 for o in outputs[name] if not o)}
        if gold_pages:
            scores = [f1(outputs[name][i], page_set.pages[i].gold or "", page_set.metric) for i in gold_pages]
            entry["f1"] = round(sum(scores) / len(scores), 4)
            entry["f1_pages"] = len(scores)
        result[name] = entry
    result["speedup"] = round(median(ratios), 3)
    result["speedup_runs"] = [round(r, 3) for r in ratios]
    if gold_pages:
        result["better_f1"] = result["sieve"]["f1"] > result["trafilatura"]["f1"]
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """All sets pooled: total pages over total time, per contender (median over runs of the pooled pass)."""
    total_pages = sum(r["pages"] for r in results)
    pooled = {}
    for name in ("sieve", "trafilatura"):
        ms = sum(r[name]["ms_per_page"] * r["pages"] for r in results)
        pooled[name] = round(1000 * total_pages / ms, 2) if ms else None
    speedups = [r["speedup"] for r in results]
    pooled_speedup = round(pooled["trafilatura"] and pooled["sieve"] / pooled["trafilatura"] or 0, 3)
    sets_met = [r["set"] for r in results if r["speedup"] >= TARGET_SPEEDUP and r.get("better_f1", True)]
    better_f1 = all(r.get("better_f1", True) for r in results)
    return {"pages": total_pages, "pooled_pages_per_s": pooled, "pooled_speedup": pooled_speedup,
            "min_set_speedup": min(speedups) if speedups else None, "sets_met": sets_met,
            "pooled_met": pooled_speedup >= TARGET_SPEEDUP and better_f1,
            "target_met": len(sets_met) == len(results)}


def render(payload: dict[str, Any]) -> str:
    rows = []
    for r in payload["sets"]:
        rows.append([
            r["set"], r["pages"], r["sieve"]["pages_per_s"], r["trafilatura"]["pages_per_s"], f"{r['speedup']:.2f}x",
            r["sieve"].get("f1", "-"), r["trafilatura"].get("f1", "-"), r["metric"],
            verdict(r["speedup"] >= TARGET_SPEEDUP and r.get("better_f1", True)),
        ])
    s = payload["summary"]
    rows.append(["all (pooled)", s["pages"], s["pooled_pages_per_s"]["sieve"], s["pooled_pages_per_s"]["trafilatura"],
                 f"{s['pooled_speedup']:.2f}x", "", "", "", verdict(s.get("pooled_met", s["target_met"]))])
    return table(["set", "pages", "sieve pages/s", "trafilatura pages/s", "sieve speed-up (median of runs)",
                  "sieve F1", "trafilatura F1", "metric", "target >=1.5x at better F1"], rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer pages per set")
    parser.add_argument("--sets", default="", help="comma-separated subset of set names")
    args = parser.parse_args(argv)
    cpu = pin_one_core()
    sets = all_sets(quick=args.quick)
    if args.sets:
        wanted = set(args.sets.split(","))
        sets = [s for s in sets if s.name in wanted]
    results = []
    for page_set in sets:
        print(f"extraction: {page_set.name} ({len(page_set.pages)} pages, {args.runs} runs) ...", flush=True)
        results.append(bench_set(page_set, max(1, args.runs)))
    payload = {"benchmark": "extraction", "pinned_cpu": cpu, "runs": args.runs, "quick": args.quick,
               "command": " ".join(["python -m bench.extraction", *(sys.argv[1:] if argv is None else argv)]),
               "sets": results, "summary": summarise(results)}
    write_json("extraction", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
