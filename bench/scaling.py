"""Scaling: the same sieve crawl at 1,000, 5,000 and 20,000 articles; wall time should grow linearly and
peak memory stay flat (within 20%).

Each size gets its own demo-site process; each run is a fresh worker process (bench.sieve_crawl direct).
Linearity is judged on the marginal cost: seconds per page between consecutive sizes should not rise by
more than 20% (a fixed start-up makes small crawls look slower per page, which is not non-linearity).

    python -m bench.scaling [--sizes 1000,5000,20000] [--runs 5] [--quick]
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.common import DemoServerProcess, median, spread, table, verdict, write_json
from bench.crawl import run_sieve

TOLERANCE = 0.20


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x; returns (a, b, r squared)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def bench_scaling(sizes: list[int], runs: int) -> dict[str, Any]:
    points = []
    for size in sizes:
        with DemoServerProcess(size) as server:
            outs = []
            for run in range(runs):
                outs.append(run_sieve(server.base_url))
                r = outs[-1]
                print(f"  {size} articles, run {run + 1}: {r['pages']} pages in {r['wall_s']} s, peak RSS {r['peak_rss_mb']} MB",
                      flush=True)
        walls = [o["wall_s"] for o in outs]
        rss = [o["peak_rss_mb"] for o in outs]
        points.append({"articles": size, "pages": outs[0]["pages"], "stored": outs[0]["articles"], "runs": runs,
                       "wall_s": round(median(walls), 3), "wall_min_max": [round(v, 3) for v in spread(walls)],
                       "pages_per_s": round(outs[0]["pages"] / median(walls), 1),
                       "peak_rss_mb": round(median(rss), 1), "rss_min_max": list(spread(rss))})
    xs = [p["pages"] for p in points]
    ys = [p["wall_s"] for p in points]
    a, b, r2 = fit_line(xs, ys) if len(points) > 1 else (0.0, 0.0, 1.0)
    marginal = []
    for lo, hi in zip(points, points[1:], strict=False):
        marginal.append(round(1000 * (hi["wall_s"] - lo["wall_s"]) / (hi["pages"] - lo["pages"]), 3))
    linear = all(m2 <= m1 * (1 + TOLERANCE) for m1, m2 in zip(marginal, marginal[1:], strict=False)) if len(marginal) > 1 else True
    rss = [p["peak_rss_mb"] for p in points]
    flat = max(rss) <= min(rss) * (1 + TOLERANCE)
    return {"points": points, "fit": {"fixed_s": round(a, 3), "ms_per_page": round(1000 * b, 3), "r2": round(r2, 5)},
            "marginal_ms_per_page": marginal, "linear": linear, "memory_flat": flat,
            "rss_growth": round(max(rss) / min(rss) - 1, 3)}


def render(payload: dict[str, Any]) -> str:
    rows = [[f"{p['articles']:,}", f"{p['pages']:,}", f"{p['stored']:,}", p["wall_s"], p["pages_per_s"], p["peak_rss_mb"]]
            for p in payload["points"]]
    text = table(["articles", "pages fetched", "articles stored", "wall s (median)", "pages/s", "peak RSS MB (median)"], rows)
    f = payload["fit"]
    text += (f"\n\nLinear fit: {f['fixed_s']} s + {f['ms_per_page']} ms/page (R² {f['r2']}); marginal ms/page between sizes "
             f"{payload['marginal_ms_per_page']}: linear {verdict(payload['linear'])}. Peak RSS grows "
             f"{100 * payload['rss_growth']:.0f}% from smallest to largest: flat within 20% {verdict(payload['memory_flat'])}.")
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="sizes 500, 1,000, 2,000")
    args = parser.parse_args(argv)
    sizes = [500, 1000, 2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    print(f"scaling: sizes {sizes}, {args.runs} runs each", flush=True)
    result = bench_scaling(sizes, max(1, args.runs))
    payload = {"benchmark": "scaling", "command": " ".join(["python -m bench.scaling", *(sys.argv[1:] if argv is None else argv)]),
               "sizes": sizes, **result}
    write_json("scaling", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
