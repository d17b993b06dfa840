"""Where a whole crawl spends CPU, across every process and thread: py-spy's raw samples, grouped.

pyinstrument sees only the main thread of one process; a sieve crawl also burns CPU in the asyncio
worker threads (warehouse calls) and in the extraction pool's processes. `py-spy record --subprocesses
--threads -f raw` samples all of them; each sample is put in one phase by the first marker of a priority
list found in its stack, so the shares add up to 100% of the sampled CPU.

    python -m bench.pyspy [--articles 1000]      (needs `uv pip install py-spy`; run as a user allowed to ptrace)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import OUT, PYTHON, DemoServerProcess, quiet_env, table, write_json

# (phase, marker in a frame), in priority order: the first marker found anywhere in a stack names its phase
_MARKERS: tuple[tuple[str, str], ...] = (
    ("imports and process start-up", "_find_and_load"),
    ("warehouse: open/close DuckDB file", "warehouse/connection.py"),
    ("warehouse: record_extractions", "record_extractions"),
    ("warehouse: record_fetches", "record_fetches"),
    ("warehouse: frontier (due, add, make_due)", "warehouse/frontier.py"),
    ("warehouse: other", "warehouse/"),
    ("extract: trafilatura", "trafilatura/"),
    ("extract: simhash/content hash", "extractors/dedup.py"),
    ("extract: prune (selectolax)", "extractors/dom.py"),
    ("extract: density", "extractors/density.py"),
    ("extract: metadata and dates", "extractors/metadata.py"),
    ("extract: metadata and dates", "extractors/dates.py"),
    ("extract: text rules", "extractors/textrules.py"),
    ("extract: other", "extractors/"),
    ("fetch: decode", "crawler/decode.py"),
    ("fetch: link discovery", "crawler/discover.py"),
    ("fetch: URL normalisation", "crawler/urls.py"),
    ("fetch: httpx/httpcore/anyio", "httpx/"),
    ("fetch: httpx/httpcore/anyio", "httpcore/"),
    ("fetch: httpx/httpcore/anyio", "anyio/"),
    ("fetch: crawler (politeness, robots, retries)", "crawler/"),
    ("process pool: pickling and queues", "multiprocessing/"),
    ("process pool: pickling and queues", "concurrent/futures/process.py"),
    ("pipeline loop (flows/pipeline.py)", "flows/pipeline.py"),
    ("asyncio event loop", "asyncio/"),
    ("thread pool idle/handoff", "concurrent/futures/thread.py"),
    ("thread pool idle/handoff", "threading.py"),
)


def phase_of(frames: list[str]) -> str:
    """The first phase in _MARKERS order whose marker appears anywhere in the stack (a priority list)."""
    for phase, marker in _MARKERS:
        if any(marker in frame for frame in frames):
            return phase
    return "other"


def summarise(raw: Path) -> dict[str, Any]:
    phases: Counter[str] = Counter()
    by_process: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        phases[phase_of(frames)] += n
        worker = any("forkserver" in f or "spawn_main" in f for f in frames[:3])
        thread = next((f for f in frames if f.startswith("thread")), "")
        where = "extraction pool processes" if worker else ("main process, main thread" if "MainThread" in thread
                                                            else "main process, other threads")
        by_process[where] += n
        total += n
    total = total or 1
    return {"samples": total,
            "phases": [[p, n, round(100 * n / total, 1)] for p, n in phases.most_common()],
            "where": [[p, n, round(100 * n / total, 1)] for p, n in by_process.most_common()]}


def record(articles: int, out: Path, rate: int = 200) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    folder = OUT / "tmp" / "pyspy"
    shutil.rmtree(folder, ignore_errors=True)
    with DemoServerProcess(articles) as server:
        cmd = [pyspy, "record", "--subprocesses", "--threads", "-r", str(rate), "-f", "raw", "-o", str(out), "--",
               PYTHON, "-m", "bench.sieve_crawl", "direct", "--base", server.base_url, "--dir", str(folder)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=quiet_env())
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return summarise(out)


def render(payload: dict[str, Any]) -> str:
    text = table(["phase (all processes and threads)", "samples", "% of CPU samples"], payload["phases"])
    text += "\n\n" + table(["where", "samples", "%"], payload["where"])
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="500 articles")
    args = parser.parse_args(argv)
    articles = 500 if args.quick else args.articles
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "pyspy_crawl.txt"
    summary = record(articles, out)
    payload = {"benchmark": "pyspy", "tool": "py-spy", "articles": articles,
               "command": f"python -m bench.pyspy --articles {articles}", "raw": str(out.relative_to(OUT.parent.parent)), **summary}
    write_json("pyspy", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
