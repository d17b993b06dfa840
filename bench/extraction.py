"""Extraction throughput on one core: sieve's `extractors.extract` against `trafilatura.extract` (defaults).

Both get the same decoded string for every page. Each run times one pass of each extractor over the
whole set, in alternating order; pages/s is the median over runs, and the speed-up is the median of
the per-run ratios (the two passes of a run share the machine's mood). F1 comes from the first run.

    python -m bench.extraction [--runs 5] [--quick] [--sets golden,demo,daniel_zh_dev,gne_silver_zh,scrapinghub_aeb]
    python -m bench.extraction --ref GITREF [--rounds 3]    # this tree's extract() against GITREF's

With --ref, each round times both code trees' `extractors.extract` on the public sets, in
alternating order, each in a fresh process pinned to one core (the same decoded pages for both:
this tree's decoder); a tree's rate per set is its best pass (the machine's noise only slows).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import median, spread, table, verdict, write_json
from bench.pages import EVALDATA, Page, PageSet, all_sets, evaldata_set
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
    parser.add_argument("--ref", default="", help="compare this tree's extract() with the one at this git ref")
    parser.add_argument("--rounds", type=int, default=3, help="with --ref: alternations (and passes per process)")
    parser.add_argument("--time-tree", default="", help=argparse.SUPPRESS)   # internal: one --ref measurement
    args = parser.parse_args(argv)
    if args.time_tree:
        print(json.dumps(time_tree(args.time_tree, args.sets.split(","), args.rounds)))
        return {}
    if args.ref:
        return compare_with_ref(args.ref, args.rounds, args.sets)
    cpu = pin_one_core()
    sets = all_sets(quick=args.quick)
    daniel = evaldata_set("daniel_zh_dev", 40 if args.quick else None) if (EVALDATA / "daniel_zh_dev").is_dir() else None
    if daniel is not None and daniel.pages:
        sets.insert(2, daniel)
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


PUBLIC_SETS = ("daniel_zh_dev", "gne_silver_zh", "scrapinghub_aeb")


def time_tree(tree: str, names: list[str], passes: int) -> dict[str, float]:
    """pages/s of `tree`'s extract() per set, best of `passes` passes (run in a fresh process)."""
    pin_one_core()
    from crawler.decode import decode_html  # this tree's decoder: both trees get the same text

    decoded = {name: [decode_html(path.read_bytes()).text for path in sorted((EVALDATA / name / "html").glob("*.html"))]
               for name in names}
    sys.path.insert(0, tree)
    for module in [m for m in sys.modules if m == "extractors" or m.startswith("extractors.")]:
        del sys.modules[module]
    from extractors import extract

    rates = {}
    for name, pages in decoded.items():
        for html in pages[:3]:
            extract(html, "")
        best = float("inf")
        for _ in range(max(1, passes)):
            started = time.process_time()
            for html in pages:
                extract(html, "")
            best = min(best, time.process_time() - started)
        rates[name] = round(len(pages) / best, 1)
    return rates


def compare_with_ref(ref: str, rounds: int, sets: str) -> dict[str, Any]:
    import subprocess
    import tempfile

    from bench.common import ROOT

    names = [n for n in (sets.split(",") if sets else PUBLIC_SETS) if (EVALDATA / n / "html").is_dir()]
    with tempfile.TemporaryDirectory(prefix="sieve-ref-") as old:
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        trees = {"this tree": str(ROOT), ref: old}
        rates: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
        for round_ in range(max(1, rounds)):
            for label in (list(trees) if round_ % 2 == 0 else list(trees)[::-1]):
                run = subprocess.run([sys.executable, "-m", "bench.extraction", "--time-tree", trees[label],
                                      "--sets", ",".join(names), "--rounds", str(rounds)],
                                     cwd=ROOT, capture_output=True, text=True, check=True)
                rates[label].append(json.loads(run.stdout.strip().splitlines()[-1]))
    best = {label: {n: max(r[n] for r in runs) for n in names} for label, runs in rates.items()}
    rows = [[n, best["this tree"][n], best[ref][n], f"{best['this tree'][n] / best[ref][n]:.2f}x"] for n in names]
    print(table(["set", "this tree pages/s", f"{ref} pages/s", "ratio"], rows))
    payload = {"benchmark": "extraction_vs_ref", "ref": ref, "rounds": rounds, "best_pages_per_s": best,
               "command": f"python -m bench.extraction --ref {ref} --rounds {rounds}"}
    write_json("extraction_vs_ref", payload)
    return payload


if __name__ == "__main__":
    main()
