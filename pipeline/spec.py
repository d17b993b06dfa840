"""What one run of the pipeline needs to know, as plain values. flows builds these from config.yaml."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date

from crawler.settings import CrawlSettings
from extractors.model import Rules


@dataclass(frozen=True)
class SourceSpec:
    """One configured source, as a run sees it."""

    name: str
    start_urls: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    crawl: CrawlSettings
    rules: Rules
    list_url_pattern: str | None = None
    article_url_pattern: str | None = None
    max_pages: int | None = None  # fetches per run; None: until the frontier is empty
    max_list_pages: int = 2000  # list/feed/sitemap pages fetched per run
    max_depth: int = 1000  # links followed from a start URL through list pages
    config_hash: str = ""
    config_json: str = "{}"


@dataclass(frozen=True)
class StreamOptions:
    """How the stages are sized. Every queue between them is bounded, so memory stays flat."""

    batch_size: int = 100  # URLs claimed per frontier query; also the pagination lane's bound
    extract_workers: int = 0  # worker processes; 0: one per core
    extract_here: bool = False  # extract in a thread of this process instead (small runs, tests): no budget
    extract_budget_s: float = 10.0  # CPU seconds per page in a worker process; past it: rejection `timeout`
    chunk_pages: int = 16  # most pages handed to a worker at once (fewer when it would wait)
    pages_waiting: int = 0  # fetched pages waiting for a worker, at most; 0: 8 per worker
    commit_rows: int = 2000  # a window commits at this many fetch and extraction rows ...
    commit_seconds: float = 1.0  # ... or this long after it opened, whichever first
    checkpoint_rows: int = 5000  # committed rows between two checkpoints of the file (flat memory)
    lock_wait_s: float = 10.0  # one attempt to get the DuckDB file; then log who holds it, try again
    executor: Callable[[], Executor] | None = None  # another extraction pool (a Dask cluster); None: processes


@dataclass(frozen=True)
class PublishedWindow:
    """A backfill's --since/--until: articles published on days in [since, until) are kept."""

    since: date | None = None
    until: date | None = None

    @property
    def open(self) -> bool:
        return self.since is None and self.until is None


class StopSignal:
    """Asked to stop (Ctrl-C): the frontier claims nothing more, fetches in flight are dropped, the open
    window is committed. Set it from the event loop's thread (a signal handler added with the loop).

    `set(failure=...)` stops the same way, but the run then ends `failed` with that reason instead of
    `cancelled` (what orchestrates the run is gone: the CLI's Prefect did not come up)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.failure: str | None = None

    def set(self, failure: str | None = None) -> None:
        if failure is not None and self.failure is None:
            self.failure = failure
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()
