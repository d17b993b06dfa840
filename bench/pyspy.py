"""Where a whole crawl spends CPU, across every process and thread: py-spy's raw samples, grouped.

pyinstrument sees only the main thread of one process; a sieve crawl also burns CPU in other threads
(warehouse calls, Prefect's event and log workers), in Prefect's temporary server (a uvicorn
subprocess) and in the extraction processes. `py-spy record --subprocesses --threads -f raw` samples
all of them. Each sample is put in one process group (the last `process` frame of its stack) and one
phase (the first marker of a priority list found in its stack), so the shares add up to 100%.

    python -m bench.pyspy [--articles 1000] [--latency-ms 5] [--concurrency 16]   # the user's path: `sieve crawl demo`
    python -m bench.pyspy --path direct                                          # flows.pipeline.Pipeline, no Prefect

(needs py-spy from bench/requirements.lock, and a user allowed to ptrace: root here)
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import OUT, PYTHON, DemoServerProcess, quiet_env, table, write_json

# (phase, marker in a frame), in priority order: the first marker found anywhere in a stack names its phase
_MARKERS: tuple[tuple[str, str], ...] = (
    ("imports and process start-up", "_find_and_load"),
    ("prefect: API client calls (prefect/client)", "prefect/client/"),
    ("prefect: events and logs to the API", "prefect/events/"),
    ("prefect: events and logs to the API", "prefect/logging/"),
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
    ("fetch: aiohttp transport (httpx-aiohttp, aiohttp, yarl, multidict)", "httpx_aiohttp/"),
    ("fetch: aiohttp transport (httpx-aiohttp, aiohttp, yarl, multidict)", "aiohttp/"),
    ("fetch: aiohttp transport (httpx-aiohttp, aiohttp, yarl, multidict)", "yarl/"),
    ("fetch: aiohttp transport (httpx-aiohttp, aiohttp, yarl, multidict)", "multidict/"),
    ("fetch: httpx/httpcore/anyio", "httpx/"),
    ("fetch: httpx/httpcore/anyio", "httpcore/"),
    ("fetch: httpx/httpcore/anyio", "anyio/"),
    ("fetch: crawler (politeness, robots, retries)", "crawler/"),
    ("process pool: pickling and queues", "multiprocessing/"),
    ("process pool: pickling and queues", "concurrent/futures/process.py"),
    ("pipeline loop (flows/)", "flows/"),
    ("prefect: engine, tasks, states (other prefect/)", "prefect/"),
    ("CLI: typer, rich, config", "typer/"),
    ("CLI: typer, rich, config", "rich/"),
    ("CLI: typer, rich, config", "pydantic/"),
    ("asyncio event loop", "asyncio/"),
    ("thread pool idle/handoff", "concurrent/futures/thread.py"),
    ("thread pool idle/handoff", "threading.py"),
)
# Samples of Prefect's temporary server get phases of their own (none of the above apply to it)
_SERVER_MARKERS: tuple[tuple[str, str], ...] = (
    ("prefect server: imports and start-up", "_find_and_load"),
    ("prefect server: migrations check (alembic)", "alembic"),
    ("prefect server: database (sqlalchemy, sqlite)", "sqlalchemy/"),
    ("prefect server: database (sqlalchemy, sqlite)", "aiosqlite/"),
    ("prefect server: background services", "prefect/server/services/"),
    ("prefect server: API (fastapi, starlette, pydantic)", "fastapi/"),
    ("prefect server: API (fastapi, starlette, pydantic)", "starlette/"),
    ("prefect server: API (fastapi, starlette, pydantic)", "prefect/server/api/"),
    ("prefect server: API (fastapi, starlette, pydantic)", "pydantic"),
    ("prefect server: HTTP (uvicorn, h11)", "uvicorn/"),
    ("prefect server: HTTP (uvicorn, h11)", "h11/"),
    ("prefect server: other", ""),
)
_PROCESS = re.compile(r'^process \d+:"(.*)')   # a command line may hold ";" and be cut short by the split


def phase_of(frames: list[str], markers: tuple[tuple[str, str], ...] = _MARKERS) -> str:
    """The first phase in `markers` order whose marker appears anywhere in the stack (a priority list)."""
    for phase, marker in markers:
        if any(marker in frame for frame in frames):
            return phase
    return "other"


def process_of(frames: list[str]) -> str:
    """Which process group a sample belongs to, from the last `process` frame py-spy put in its stack."""
    cmdlines = [m.group(1) for f in frames if (m := _PROCESS.match(f))]
    last = cmdlines[-1] if cmdlines else ""
    if "prefect.server" in last or "uvicorn" in last or "prefect server" in last:
        return "Prefect temporary server (uvicorn subprocess)"
    if "resource_tracker" in last:
        return "multiprocessing resource tracker"
    if "forkserver" in last or "spawn_main" in last or len(cmdlines) > 1 or any("spawn_main" in f for f in frames[:4]):
        return "extraction worker processes"
    thread = next((f for f in frames if f.startswith("thread")), "")
    return "sieve process, main thread" if "MainThread" in thread else "sieve process, other threads"


_THREAD_NUMBER = re.compile(r"\(\d+\)|_\d+$")
FETCH_PHASES = ("fetch: httpx/httpcore/anyio", "fetch: aiohttp transport (httpx-aiohttp, aiohttp, yarl, multidict)")
_HTTP_FRAMES = ("httpx/", "httpcore/", "anyio/", "httpx_aiohttp/", "aiohttp/", "yarl/", "multidict/")


def summarise(raw: Path) -> dict[str, Any]:
    phases: Counter[str] = Counter()
    by_process: Counter[str] = Counter()
    threads: Counter[str] = Counter()       # the sieve process's other threads, by name: who they are
    in_fetch: Counter[str] = Counter()      # inclusive samples of httpx/httpcore/anyio functions in the fetch phase
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        where = process_of(frames)
        phase = phase_of(frames, _SERVER_MARKERS if where.startswith("Prefect temporary server") else _MARKERS)
        phases[phase] += n
        by_process[where] += n
        total += n
        if where == "sieve process, other threads":
            name = next((f for f in frames if f.startswith("thread")), "thread ?")
            threads[f"{_THREAD_NUMBER.sub('', name.split(':', 1)[-1]).strip() or '(unnamed)'}: {phase}"] += n
        if phase.startswith("fetch: ") and phase in FETCH_PHASES:
            for function in {f.split(" (")[0] for f in frames if any(m in f for m in _HTTP_FRAMES)}:
                in_fetch[function] += n
    total = total or 1
    fetch_total = sum(phases[p] for p in FETCH_PHASES) or 1
    return {"samples": total,
            "phases": [[p, n, round(100 * n / total, 1)] for p, n in phases.most_common()],
            "where": [[p, n, round(100 * n / total, 1)] for p, n in by_process.most_common()],
            "other_threads": [[t, n, round(100 * n / total, 1)] for t, n in threads.most_common(12)],
            "fetch_functions": [[f, n, round(100 * n / fetch_total, 1)] for f, n in in_fetch.most_common(14)]}


def _command(path: str, base: str, folder: Path, concurrency: int) -> tuple[list[str], dict[str, str]]:
    if path == "direct":
        return ([PYTHON, "-m", "bench.sieve_crawl", "direct", "--base", base, "--dir", str(folder),
                 "--concurrency", str(concurrency)], quiet_env())
    from bench import contenders
    from bench.race import prefect_home

    config = contenders.write_sieve_config(base, folder, concurrency=concurrency)
    return contenders.sieve_command(config), contenders.user_env(prefect_home())


def record(articles: int, out: Path, *, path: str = "cli", latency_ms: float = 5.0, concurrency: int = 16,
           rate: int = 100) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    folder = OUT / "tmp" / "pyspy"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    with DemoServerProcess(articles, latency_ms=latency_ms) as server:
        cmd, env = _command(path, server.base_url, folder, concurrency)
        proc = subprocess.run([pyspy, "record", "--subprocesses", "--threads", "-r", str(rate), "-f", "raw",
                               "-o", str(out), "--", *cmd], capture_output=True, text=True, env=env)
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy or the crawl failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return {**summarise(out), "rate_hz": rate}


def render(payload: dict[str, Any]) -> str:
    text = table(["phase (all processes and threads)", "samples", "% of CPU samples"], payload["phases"])
    text += "\n\n" + table(["where", "samples", "%"], payload["where"])
    if payload.get("other_threads"):
        text += "\n\n" + table(["the sieve process's other threads: name and phase", "samples", "% of all"],
                                payload["other_threads"])
    if payload.get("fetch_functions"):
        text += "\n\n" + table(["inside the HTTP client phases (inclusive)", "samples", "% of those phases"],
                                payload["fetch_functions"])
    if payload.get("rate_hz"):
        text += f"\n\n{payload['rate_hz']} samples per second per busy thread: {payload['rate_hz']} samples = 1 CPU second."
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--path", choices=["cli", "direct"], default="cli",
                        help="cli: `sieve crawl demo` as a user runs it; direct: the Pipeline without Prefect")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--quick", action="store_true", help="500 articles")
    args = parser.parse_args(argv)
    articles = 500 if args.quick else args.articles
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"pyspy_{args.path}.txt"
    summary = record(articles, out, path=args.path, latency_ms=args.latency_ms, concurrency=args.concurrency,
                     rate=args.rate)
    command = (f"python -m bench.pyspy --path {args.path} --articles {articles} --latency-ms {args.latency_ms:g} "
               f"--concurrency {args.concurrency}")
    payload = {"benchmark": "pyspy", "tool": "py-spy", "articles": articles, "path": args.path, "command": command,
               "raw": str(out.relative_to(OUT.parent.parent)), **summary}
    write_json("pyspy" if args.path == "cli" else "pyspy_direct", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
