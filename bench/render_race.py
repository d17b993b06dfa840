"""Tables for bench/race.py's results (terminal and BENCHMARKS.md alike)."""
from __future__ import annotations

from typing import Any

from bench.common import table, verdict
from bench.truth import verdict_text

LABELS = {
    "sieve": "`sieve crawl demo` (CLI, no Prefect server)",
    "sieve+server": "`sieve crawl demo` (CLI, running Prefect server)",
    "scrapy": "Scrapy + trafilatura + DuckDB",
}


def _m(stats: dict[str, Any] | None, digits: int = 1) -> str:
    if not stats or stats.get("median") is None:
        return ""
    lo, hi = stats["min_max"]
    value = stats["median"]
    return f"{value:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"


def _rows_cell(runs: list[dict[str, Any]]) -> str:
    cells = sorted({verdict_text(r["check"]) for r in runs if "check" in r})
    return "; ".join(cells)


def race_table(payload: dict[str, Any]) -> str:
    rows = []
    for point in payload.get("race", []):
        for name, cr in point["contenders"].items():
            s = cr["summary"]
            speedup = "1.00x" if name == "scrapy" else (f"{s['speedup']:.2f}x ({', '.join(f'{x:.2f}' for x in s['speedup_runs'])})"
                                                       if s.get("speedup") else "")
            background = s.get("background_s") or {}
            rows.append([f"{point['articles']:,}", LABELS.get(name, name), f"{s['runs'] - s['failed_runs']}/{s['runs']}",
                         s["pages"] if s["pages"] is not None else "", _m(s["wall_s"]),
                         _m(background) if background.get("median") else "", _m(s["pages_per_s"]),
                         _m(s["cpu_s"]), _m(s["cores_busy"], 2), _m(s.get("machine_busy"), 2), _m(s["peak_rss_mb"], 0),
                         _rows_cell(cr["runs"]), speedup])
    text = table(["articles", "contender", "exit 0", "pages", "wall s", "then recording in the background s", "pages/s",
                  "CPU s (tree)", "cores busy (tree)", "cores busy (machine)", "peak RSS MB (tree)",
                  "rows vs the site's truth", "pages/s vs Scrapy (median of per-run ratios)"], rows)
    text += ("\n\nMedians, (min-max) over the runs; wall from spawn to exit (pages/s over it); CPU and RSS of the whole "
             "process tree, the CPU of a flow process recording the run after the CLI exited included (cores busy "
             "(tree) = the tree's CPU s while the CLI ran / wall s; (machine) = every process's, the demo site's and a "
             "running Prefect server's too).")
    targets = payload.get("targets", {})
    for point in payload.get("race", []):
        for name, where in (("sieve", "no server"), ("sieve+server", "running server")):
            s = point["contenders"].get(name, {}).get("summary")
            if not s:
                continue
            want = targets.get("speedup", {}).get(str(point["articles"])) or targets.get("speedup", {}).get(point["articles"])
            line = f"\n- {point['articles']:,} articles, {where}: sieve {s.get('speedup') or 0:.2f}x Scrapy"
            if want:
                line += f" (target >= {want}x: {verdict((s.get('speedup') or 0) >= want)})"
            if point["articles"] >= 5000 and targets.get("cores_busy"):
                cores = s["cores_busy"]["median"] or 0
                line += f"; cores busy {cores:.2f} (target >= {targets['cores_busy']}: {verdict(cores >= targets['cores_busy'])})"
            line += f"; rows {'all correct' if s['rows_ok'] else 'NOT all correct'} in every run"
            if s["leftovers"]:
                line += f"; {s['leftovers']} process(es) left running after exit"
            text += line
    return text


def split_table(payload: dict[str, Any]) -> str:
    """Where each sieve contender's wall time and CPU go: before the crawl, the crawl, after the summary."""
    rows = []
    for point in payload.get("race", []):
        for name, cr in point["contenders"].items():
            s = cr["summary"]
            wall, shown, crawl = (s[k]["median"] if s.get(k) else None for k in ("wall_s", "first_stdout_s", "crawl_duration_s"))
            groups = s.get("cpu_groups") or {}
            if name == "scrapy":
                rows.append([f"{point['articles']:,}", LABELS[name], _f(wall), "", "", "", _f(groups.get("CLI process")), "", "", ""])
                continue
            before = shown - crawl if shown is not None and crawl is not None else None
            after = wall - shown if wall is not None and shown is not None else None
            rows.append([f"{point['articles']:,}", LABELS.get(name, name), _f(wall), _f(before), _f(crawl), _f(after),
                         _f(groups.get("CLI process")), _f(groups.get("Prefect flow run process")),
                         _f(groups.get("Prefect temporary server")), _f(groups.get("extraction workers"))])
    return table(["articles", "contender", "wall s", "before the crawl s (imports, Prefect start, flow run)",
                  "the crawl s (its summary's duration)", "after the summary s (teardown)", "CPU s: CLI process (all its threads)",
                  "CPU s: Prefect flow run process", "CPU s: Prefect temporary server", "CPU s: extraction workers"], rows)


def _f(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def rss_table(payload: dict[str, Any]) -> str:
    r = payload.get("rss")
    if not r:
        return ""
    rows = []
    for p in r["points"]:
        s = p["summary"]
        groups = s.get("rss_groups") or {}
        rows.append([f"{p['articles']:,}", s["pages"] or "", _m(s["wall_s"]), _m(s["pages_per_s"]), _m(s["cores_busy"], 2),
                     _m(s["peak_rss_mb"], 0), _f(groups.get("CLI process"), 0), _f(groups.get("Prefect flow run process"), 0),
                     _f(groups.get("Prefect temporary server"), 0),
                     _f(groups.get("extraction workers"), 0), _rows_cell(p["runs"])])
    text = table(["articles", "pages", "wall s", "pages/s", "cores busy", "peak RSS MB (tree)", "own peak MB: CLI process",
                  "own peak: Prefect flow run process", "own peak: Prefect temporary server", "own peaks summed: extraction workers", "rows vs the site's truth"],
                 rows)
    if r.get("own_peaks_growth") is not None:
        text += (f"\n\nThe sum of every process's own peak grows {100 * r['own_peaks_growth']:.0f}% from the smallest to "
                 f"the largest: flat within {100 * r['tolerance']:.0f}% {verdict(r['flat'])}. The tree's peak (a sum "
                 f"at one instant) grows {100 * r['rss_growth']:.0f}%: a crawl over before Prefect's server answered "
                 "exits before the server and the flow run's process reach their own peaks, so a small one peaks lower "
                 "for that (bench/race.py `rss_growth`).")
    elif r.get("rss_growth") is not None:
        text += (f"\n\nPeak RSS grows {100 * r['rss_growth']:.0f}% from the smallest to the largest peak: flat within "
                 f"{100 * r['tolerance']:.0f}% {verdict(r['flat'])}.")
    return text


def fixed_table(payload: dict[str, Any]) -> str:
    f = payload.get("fixed")
    if not f:
        return ""
    rows = []
    for mode, m in f["modes"].items():
        s = m["summary"]
        rows.append([f"`sieve crawl demo --max-pages 1`, {mode}", f"{s['runs'] - s['failed_runs']}/{s['runs']}",
                     _m(s["wall_s"], 2), _m(s["first_stdout_s"], 2), _m(s["after_summary_s"], 2),
                     _m(s.get("background_s"), 2), _m(s["cpu_s"], 2),
                     _m(s["peak_rss_mb"], 0), f"< {s['target_s']:g} s: {verdict(s['target_met'])}"])
    text = table(["command", "exit 0", "wall s", "summary printed at s", "after the summary s",
                  "then recording in the background s", "CPU s (tree)", "peak RSS MB", "target"], rows)
    text += (f"\n\nThe running server was `prefect server start` on 127.0.0.1 (healthy {f['server_startup_s']} s after "
             f"spawn, not counted); the site had {f['site_articles']} articles; a fresh warehouse per run.")
    return text


def render(payload: dict[str, Any]) -> str:
    parts = [f"Race ({payload.get('latency_ms', 0):g} ms latency per response, concurrency {payload.get('concurrency')} "
             f"for every contender, {payload.get('runs')} runs, order alternated):", "", race_table(payload)]
    if payload.get("race"):
        parts += ["", "Where the wall time and the CPU go (medians; CPU per process from the 50 ms poll):", "",
                  split_table(payload)]
    if payload.get("rss"):
        parts += ["", "sieve's peak RSS by site size:", "", rss_table(payload)]
    if payload.get("fixed"):
        parts += ["", "Fixed cost of a CLI run:", "", fixed_table(payload)]
    return "\n".join(parts)


def _raced(payload: dict[str, Any]) -> set[str]:
    return {name for point in payload.get("race", []) for name in point["contenders"]} or set(payload.get("contenders", []))


def _measured(payload: dict[str, Any]) -> list[str]:
    """Which commit measured each part (parts may come from different runs of the race)."""
    m = payload.get("machine", {})
    meta = payload.get("parts_meta", {})
    if not meta:
        return [f"- Code measured: {m.get('git', 'not recorded')}, {m.get('measured_at', '')}"]
    lines = []
    for part, label in (("race", "race"), ("rss", "peak RSS series"), ("fixed", "fixed cost")):
        if part in meta and part in payload:
            info = meta[part]
            lines.append(f"- {label}: code {info.get('git')}, {info.get('measured_at')}"
                         + (f", by `{info['command']}`" if info.get("command") != payload.get("command") else ""))
    return lines


def section(payload: dict[str, Any], reading: str = "") -> str:
    """The race as BENCHMARKS.md leads with it: how to reproduce it, what ran where, the tables, the reading."""
    m = payload.get("machine", {})
    start = payload.get("load_at_start")
    lines = [
        "## The crawl on the user's path: `sieve crawl` against a Scrapy pipeline (whole process)",
        "",
        f"Command: `{payload.get('command', 'python -m bench.race')}` (then `python -m bench.report --race-only` "
        "rewrites this section from bench/out/race.json).",
        "",
        *_measured(payload),
        f"- Load: 1-minute load average {start[0] if start else '?'} at the start and "
        f"{m.get('load_average_1_5_15', ['?'])[0]} at the end on {m.get('nproc', '?')} CPUs (every run's own load "
        "is in race.json); a shared machine, so only medians and same-run ratios are quoted",
        f"- Contenders: {'; '.join(f'**{k}**: {v}' for k, v in payload.get('described', {}).items() if k in _raced(payload))}",
        "",
        render(payload),
    ]
    if reading.strip():
        lines += ["", reading.strip()]
    return "\n".join(lines)
