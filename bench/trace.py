"""Wall-time accounting of a sieve crawl by stage, by wrapping the layers' public methods (bench-side only).

Sampling profilers show CPU; a crawl's wall time also goes to waiting: on the DuckDB file (every
Warehouse call opens, writes, checkpoints and closes it, serialised by a per-path lock), on the
extraction pool, on the network. This wraps Warehouse, Fetcher and Pipeline methods in the worker
process (no edits to their code) and sums the wall seconds spent inside each.
"""
from __future__ import annotations

import functools
import inspect
import time
from collections import defaultdict
from typing import Any

_totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])


def _wrap(owner: type, name: str, label: str) -> None:
    original = getattr(owner, name, None)
    if original is None:
        return
    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                entry = _totals[label]
                entry[0] += time.perf_counter() - start
                entry[1] += 1
        setattr(owner, name, timed_async)
    else:
        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                entry = _totals[label]
                entry[0] += time.perf_counter() - start
                entry[1] += 1
        setattr(owner, name, timed)


def install() -> None:
    from crawler import Fetcher
    from pipeline.write import Window
    from warehouse import Warehouse

    for name in ("record_window", "record_fetches", "record_extractions", "due", "add_frontier", "make_due", "query",
                 "migrate", "start_run", "finish_run", "upsert_sources", "pages_to_extract"):
        _wrap(Warehouse, name, f"Warehouse.{name}")
    _wrap(Fetcher, "fetch", "Fetcher.fetch (per request, overlapping)")
    _wrap(Window, "commit", "Window.commit (one commit window: the writer's transaction, in a thread)")


def report(wall_s: float) -> list[list[Any]]:
    rows = []
    for label, (seconds, calls) in sorted(_totals.items(), key=lambda kv: -kv[1][0]):
        rows.append([label, calls, round(seconds, 3), round(1000 * seconds / max(1, calls), 2),
                     round(100 * seconds / wall_s, 1) if wall_s else None])
    return rows
