"""pipeline: the crawl as a stream, without Prefect. A page goes, file by file:

    frontier.py   claims due URLs from the warehouse (and pagination found this run) into a bounded queue
    fetch.py      fetch workers (the crawler's Fetcher; its politeness is the only concurrency gate),
                  link discovery on list pages
    intake.py     the bounded queue of pages in front of extraction (back-pressure on fetching)
    extract.py    extraction worker processes (extract_worker.py), a CPU budget per page
    write.py      the one writer: commits a window every N rows or T seconds, waits out a locked file
    rows.py       an extraction's outcome as the row the writer stores (article, or rejection and reason)
    run.py        `Pipeline`: the stages wired together, the run row, what a run did (summary.py)

It imports crawler, extractors, warehouse and outcomes; flows (Prefect, the CLI, config loading) sits on
top and hands it plain values (spec.py). Names load on first use, so an extraction worker importing
`pipeline.extract_worker` pulls in nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.run import Pipeline as Pipeline
    from pipeline.spec import SourceSpec as SourceSpec, StreamOptions as StreamOptions
    from pipeline.summary import RunSummary as RunSummary
    from pipeline.write import Window as Window

_EXPORTS = {
    "Pipeline": "pipeline.run",
    "RunSummary": "pipeline.summary",
    "SourceSpec": "pipeline.spec",
    "StreamOptions": "pipeline.spec",
    "Window": "pipeline.write",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
