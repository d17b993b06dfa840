"""The one writer: rows from the fetch and extraction stages gather in a window, which commits as one
transaction (`Warehouse.record_window`) every `commit_rows` rows or `commit_seconds` seconds,
whichever first, or at once when the frontier runs dry and asks for a flush.

Windows commit in order, one at a time: a page's extraction is never committed before its fetch.
Counts move only after a commit (summary.py). A window the file lock keeps out is kept, not dropped:
the writer logs who holds the file and tries again with backoff, while producers wait for room
(`pending_cap` rows), so memory stays bounded however long the lock is held.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from outcomes import TransientError
from pipeline.spec import StopSignal
from pipeline.summary import RunSummary
from warehouse import ArticleRow, ExtractionCounts, FetchRow, FrontierRow, Rejection, Warehouse, WarehouseBusy

log = logging.getLogger("sieve.pipeline")
T = TypeVar("T")
WAREHOUSE_BUSY = "warehouse_busy"


class Window:
    """Rows committed together. A plain class on purpose: Prefect does not walk it as a task parameter."""

    __slots__ = ("number", "fetches", "discovered", "articles", "rejections", "tally", "opened", "_store")

    def __init__(self, number: int, store: Callable[[Window], tuple[int, ExtractionCounts]]) -> None:
        self.number = number
        self.fetches: list[FetchRow] = []
        self.discovered: list[FrontierRow] = []
        self.articles: list[ArticleRow] = []
        self.rejections: list[Rejection] = []
        self.tally: Counter = Counter()  # fetched/unchanged/failed:<kind>/extracted/reextracted/rejected:<reason>
        self.opened = 0.0  # when its first row came (the window's clock starts then)
        self._store = store

    @property
    def rows(self) -> int:
        return len(self.fetches) + len(self.articles) + len(self.rejections)

    def __bool__(self) -> bool:
        return bool(self.rows or self.discovered)

    def __repr__(self) -> str:
        return f"Window({self.number}, {len(self.fetches)} fetches, {len(self.articles)} articles)"

    async def commit(self) -> tuple[int, ExtractionCounts]:
        """Store the window in one transaction. A locked file is a TransientError (worth another attempt)."""
        try:
            return await asyncio.to_thread(self._store, self)
        except WarehouseBusy as exc:
            raise TransientError(WAREHOUSE_BUSY, str(exc)) from exc


Committer = Callable[[Window], Awaitable[tuple[int, ExtractionCounts]]]


async def direct_commit(window: Window) -> tuple[int, ExtractionCounts]:
    return await window.commit()


async def patiently(
    call: Callable[[], Awaitable[T]],
    what: str,
    *,
    stop: StopSignal | None = None,
    on_wait: Callable[[str | None], None] | None = None,
    max_delay_s: float = 10.0,
) -> T:
    """Await `call()`, trying again after a TransientError (a locked file) with jittered backoff.

    Every failure is logged with its reason (DuckDB's message names the process holding the file);
    `on_wait` gets a short status for a progress bar, and None once through. Nothing is dropped: the
    caller's rows wait. A stop request ends the waiting with the last error.
    """
    delay, attempt = 0.5, 0
    while True:
        try:
            result = await call()
        except TransientError as exc:
            attempt += 1
            log.warning(
                "%s: %s; keeping the work and trying again in %.1f s (attempt %d)",
                what,
                exc.detail or exc,
                delay,
                attempt,
            )
            if on_wait is not None:
                on_wait(f"waiting for the warehouse: {exc.detail or exc}"[:160])
            if stop is not None and stop.requested:
                raise
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, max_delay_s)
            continue
        if attempt and on_wait is not None:
            on_wait(None)
        return result


class Writer:
    """Collects rows into windows and commits them; `run()` is the writer's task."""

    def __init__(
        self,
        warehouse: Warehouse,
        summary: RunSummary,
        *,
        revisit_after: timedelta,
        commit_rows: int = 2000,
        commit_seconds: float = 1.0,
        checkpoint_rows: int = 5000,
        commit: Committer | None = None,
        stop: StopSignal | None = None,
        on_commit: Callable[[Window], None] | None = None,
        on_wait: Callable[[str | None], None] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.summary = summary
        self.revisit_after = revisit_after
        self.commit_rows = commit_rows
        self.commit_seconds = commit_seconds
        # producers wait beyond this many uncommitted rows: the window filling and the one committing, both full
        self.pending_cap = 2 * commit_rows
        # The warehouse's writer keeps the file open between windows and DuckDB holds what it wrote in
        # memory until a checkpoint; letting go of the file every so often checkpoints it, so the
        # writer's memory stays flat however long the crawl (about 0.1-0.3 s each time).
        self.checkpoint_rows = checkpoint_rows
        self._since_checkpoint = 0
        self._commit = commit or direct_commit
        self._stop = stop
        self._on_commit = on_commit
        self._on_wait = on_wait
        self._number = 0
        self.window = self._new_window()
        self.committing: Window | None = None
        self.generation = 0  # windows committed so far
        self.committed_rows = 0
        self._wake = asyncio.Event()  # a row arrived, a flush was asked, or the writer should end
        self._room = asyncio.Event()
        self._room.set()
        self._flush = False
        self._force = False
        self._closing = False
        self.committed = asyncio.Event()  # set after each commit (the frontier waits on it)

    def _new_window(self) -> Window:
        self._number += 1
        return Window(self._number, self._store)

    def _store(self, window: Window) -> tuple[int, ExtractionCounts]:
        return self.warehouse.record_window(
            window.fetches,
            revisit_after=self.revisit_after,
            discovered=window.discovered,
            articles=window.articles,
            rejections=window.rejections,
        )

    # ---- producers -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Rows not yet committed (the open window and the one being committed)."""
        return self.window.rows + (self.committing.rows if self.committing else 0)

    @property
    def idle(self) -> bool:
        return not self.window and self.committing is None

    async def room(self) -> None:
        """Wait while too much is uncommitted (a locked file): back-pressure on fetching and extraction."""
        while self.pending >= self.pending_cap:
            self._room.clear()
            await self._room.wait()

    def add_fetch(self, row: FetchRow, discovered: list[FrontierRow], outcome: str) -> None:
        """`outcome`: "fetched", "unchanged" or the error kind."""
        self.window.fetches.append(row)
        self.window.discovered += discovered
        self.window.tally[outcome if outcome in ("fetched", "unchanged") else f"failed:{outcome}"] += 1
        self._arrived()

    def add_extraction(self, result: ArticleRow | Rejection, *, stored: bool) -> None:
        """`stored`: a page re-extracted from the warehouse, not fetched by this run."""
        if isinstance(result, ArticleRow):
            self.window.articles.append(result)
        else:
            self.window.rejections.append(result)
            self.window.tally[f"rejected:{result.reason}"] += 1
        self.window.tally["reextracted" if stored else "extracted"] += 1
        self._arrived()

    def _arrived(self) -> None:
        if not self.window.opened:
            self.window.opened = time.monotonic()
            self._wake.set()  # the writer starts waiting for this window
        elif self.window.rows >= self.commit_rows or len(self.window.discovered) >= self.commit_rows:
            self._wake.set()

    def flush(self, *, force: bool = False) -> None:
        """The frontier has nothing due: commit the open window now if it holds discovered URLs, or
        whatever it holds when `force` (nothing else is in flight: the run may be ending)."""
        self._flush = True
        self._force = self._force or force
        self._wake.set()

    # ---- the writer's task ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Commit windows until `close()`; the last window commits before this returns."""
        while True:
            if not self.window:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            due_in = self.window.opened + self.commit_seconds - time.monotonic()
            full = self.window.rows >= self.commit_rows or len(self.window.discovered) >= self.commit_rows
            asked = self._force or (self._flush and bool(self.window.discovered))
            if not (full or asked or self._closing) and due_in > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), due_in)
                except TimeoutError:
                    pass
                continue
            self._flush = self._force = False
            await self._commit_open_window()

    async def _commit_open_window(self) -> None:
        window, self.committing = self.window, self.window
        self.window = self._new_window()
        try:
            added, counts = await patiently(
                lambda: self._commit(window),
                f"committing window {window.number}",
                stop=self._stop,
                on_wait=self._on_wait,
            )
        finally:
            self.committing = None
        self._apply(window, added, counts)
        self.generation += 1
        self.committed_rows += window.rows
        self._since_checkpoint += window.rows
        if self._since_checkpoint >= self.checkpoint_rows:
            self._since_checkpoint = 0
            await asyncio.to_thread(self.warehouse.release)
        if self._on_commit is not None:
            self._on_commit(window)
        self._room.set()
        self.committed.set()
        self.committed.clear()  # waiters already woken; the next commit sets it again

    def _apply(self, window: Window, added: int, counts: ExtractionCounts) -> None:
        s = self.summary
        for key, n in window.tally.items():
            if key == "fetched":
                s.fetched += n
            elif key == "unchanged":
                s.unchanged += n
            elif key.startswith("failed:"):
                s.failed += n
                s.failures[key.removeprefix("failed:")] += n
            elif key == "extracted":
                s.extracted += n
            elif key == "reextracted":
                s.reextracted += n
            elif key.startswith("rejected:"):
                s.rejected += n
                s.rejections[key.removeprefix("rejected:")] += n
        s.discovered += added
        s.articles_new += counts.new
        s.articles_updated += counts.updated
        s.articles_unchanged += counts.unchanged
        s.duplicates += counts.duplicates
        s.windows += 1

    async def close(self) -> None:
        """Ask `run()` to commit what is open and end."""
        self._closing = True
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {"pending": self.pending, "windows": self.generation, "committed_rows": self.committed_rows}
