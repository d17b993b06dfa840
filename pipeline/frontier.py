"""The frontier stage: which URL the next free fetch worker takes.

Work comes from three places, in this order: URLs given to the run (a backfill), the pagination lane
(list pages found by this run, handed on at once instead of waiting for a commit and a query), and
the warehouse's due URLs (`Warehouse.due`), claimed `batch_size` at a time. Articles found on list
pages reach the warehouse with the writer's next window and are claimed from there, so the
warehouse stays the one record of what is known and when it is due.

Bounds: `max_pages` claims per run; `max_list_pages` list pages per run, followed at most
`max_depth` links from a start URL; the lane holds at most `batch_size` URLs (the rest wait in the
warehouse), so a page linking thousands of list pages cannot fill memory or one window.

A URL claimed but not yet committed is never claimed twice: a due query that started before the
commit of a URL's fetch may still list it, so claims remember the writer's generation (windows
committed) at query time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from outcomes import TransientError
from pipeline.spec import SourceSpec, StopSignal
from pipeline.write import WAREHOUSE_BUSY, Writer, patiently
from warehouse import LIST_KINDS, FrontierItem, Warehouse, WarehouseBusy


class Frontier:
    def __init__(
        self,
        warehouse: Warehouse,
        source: SourceSpec,
        writer: Writer,
        *,
        batch_size: int = 100,
        given: Sequence[FrontierItem] = (),
        claim_due: bool = True,
        kinds: Sequence[str] | None = None,
        follow_lists: bool = True,
        max_pages: int | None = None,
        busy: Callable[[], bool] = lambda: False,
        stop: StopSignal | None = None,
        on_wait: Callable[[str | None], None] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.source = source
        self.writer = writer
        self.batch_size = batch_size
        self.kinds = tuple(kinds) if kinds is not None else None
        self.claim_due = claim_due
        self.follow_lists = follow_lists
        self.max_pages = max_pages
        self._busy = busy  # a fetch or an extraction in flight? (the writer is asked apart)
        self._stop = stop
        self._on_wait = on_wait
        self._given: deque[FrontierItem] = deque({item.url: item for item in given}.values())
        self._lane: deque[FrontierItem] = deque()
        self._buffer: deque[FrontierItem] = deque()
        self._queued: set[str] = {item.url for item in self._given}  # in given, lane or buffer
        self._lists: set[str] = {item.url for item in self._given if item.kind in LIST_KINDS}  # queued or taken
        self._depth: dict[str, int] = {u: 0 for u in source.start_urls}
        self._beyond: set[str] = set()  # list pages found deeper than max_depth: never claimed
        self._uncommitted: dict[str, int | None] = {}  # taken: url -> window its fetch committed in (None: not yet)
        self._claimed = 0
        self._given_count = len(self._given)
        self._refill = asyncio.Lock()
        self._news = asyncio.Event()  # a list page on the lane, or the last work in flight ended
        self.done = False
        self.stalls = 0  # waits for news that nothing ended but the timeout: a second idle each
        self.now = datetime.now(UTC)  # "due" means due when the run started

    # ---- what the fetch workers call ---------------------------------------------------------
    @property
    def waiting(self) -> int:
        """URLs claimed and not yet taken by a fetch worker (for the progress bar)."""
        return len(self._queued)

    @property
    def claimed(self) -> int:
        return self._claimed

    @property
    def total(self) -> int | None:
        """How many URLs this run will fetch, when that is known in advance (for a progress bar)."""
        if self.max_pages is not None:
            return self.max_pages
        return self._given_count if not self.claim_due else None

    @property
    def list_pages(self) -> int:
        return len(self._lists)

    def depth_of(self, url: str) -> int:
        return self._depth.get(url, 0)

    async def next(self) -> FrontierItem | None:
        """The next URL to fetch, or None when the run has nothing more to do (or was asked to stop)."""
        while True:
            if (
                self.done
                or (self._stop is not None and self._stop.requested)
                or (self.max_pages is not None and self._claimed >= self.max_pages)
            ):
                self.done = True
                return None
            item = self._pop()
            if item is not None:
                return item
            async with self._refill:
                if self._queued or self.done:
                    continue  # another worker refilled meanwhile
                generation = self.writer.generation
                if self.claim_due and await self._query(generation):
                    continue
                in_flight = self._busy()
                if not in_flight and self.writer.idle:
                    if self.writer.generation == generation:
                        self.done = True  # nothing due, nothing in flight, nothing committed since
                    continue
                await self._wait_for_news(force=not in_flight)

    def _pop(self) -> FrontierItem | None:
        for queue in (self._given, self._lane, self._buffer):
            if queue:
                item = queue.popleft()
                self._queued.discard(item.url)
                self._uncommitted[item.url] = None
                self._claimed += 1
                return item
        return None

    async def _query(self, generation: int) -> bool:
        """Claim due URLs from the warehouse into the buffer; False when none are due."""
        lists_left = self.source.max_list_pages - len(self._lists)
        kinds = self.kinds
        if lists_left <= 0 or not self.follow_lists:
            kinds = tuple(k for k in (kinds or ("article", *LIST_KINDS)) if k not in LIST_KINDS)
            if not kinds:
                return False
        limit = self.batch_size
        if self.max_pages is not None:
            limit = min(limit, self.max_pages - self._claimed)
        if limit <= 0:
            return False
        # rows the answer may hold that cannot be taken: fetched but not committed before the query, or queued
        skip = (
            sum(1 for g in self._uncommitted.values() if g is None or g > generation)
            + len(self._queued)
            + len(self._beyond)
        )
        due = await patiently(
            lambda: _read(self.warehouse.due, self.source.name, self.now, limit + skip, kinds),
            "reading the frontier",
            stop=self._stop,
            on_wait=self._on_wait,
        )
        taken = 0
        for item in due:
            if taken >= limit:
                break
            committed_in = self._uncommitted.get(item.url, -1)
            if item.url in self._queued or committed_in is None or committed_in > generation:
                continue
            if item.kind in LIST_KINDS:
                if item.url in self._lists or item.url in self._beyond or lists_left <= 0:
                    continue
                lists_left -= 1
                self._lists.add(item.url)
            self._buffer.append(item)
            self._queued.add(item.url)
            taken += 1
        # fetches committed before the query began are reflected in its answer: forget them
        for url in [u for u, g in self._uncommitted.items() if g is not None and g <= generation]:
            del self._uncommitted[url]
        return taken > 0

    async def _wait_for_news(self, *, force: bool) -> None:
        """Nothing due yet: ask the writer to commit what it found (all it holds when nothing is in
        flight), then wait for a commit, news (`work_done`, a list page on the lane) or a stop."""
        self.writer.flush(force=force)
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self.writer.committed.wait()),
            asyncio.ensure_future(self._news.wait()),
        ]
        if self._stop is not None:
            waiters.append(asyncio.ensure_future(self._stop.wait()))
        try:
            done, _ = await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            self.stalls += not done
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._news.clear()

    # ---- what the stages report ------------------------------------------------------------------
    def work_done(self) -> None:
        """A fetch or an extraction ended. If it was the last one in flight, a worker waiting for news
        looks again now and has the writer commit what is left, instead of sleeping out its timeout
        (a second idle at the end of every run, and whenever the run runs dry)."""
        if not self._busy():
            self._news.set()

    def offer_lists(self, parent: str, urls: Sequence[str]) -> None:
        """List pages found on `parent`: straight to the lane when the run follows them and bounds allow;
        the others reach the warehouse with the writer's window and wait there."""
        if not self.follow_lists or self.done:
            return
        depth = self._depth.get(parent, 0) + 1
        for url in urls:
            depth_here = self._depth.setdefault(url, depth)
            if depth_here > self.source.max_depth:
                self._beyond.add(url)
                continue
            if url in self._lists:
                continue
            if len(self._lists) >= self.source.max_list_pages or len(self._lane) >= self.batch_size:
                break
            self._lane.append(FrontierItem(url, self.source.name, "list", None, None, 0))
            self._queued.add(url)
            self._lists.add(url)
            self._news.set()

    def offer_articles(self, parent: str, urls: Sequence[str]) -> None:
        """Articles found on `parent`. A local crawl takes them from the warehouse once committed (it knows
        which are new or due); a fleet worker's frontier may take some at once (shard_run.HostFrontier)."""

    def committed(self, urls: Sequence[str], generation: int) -> None:
        """The writer committed these URLs' fetches in window `generation`."""
        for url in urls:
            if url in self._uncommitted:
                self._uncommitted[url] = generation


async def _read(call: Callable[..., list[FrontierItem]], *args: object) -> list[FrontierItem]:
    """A warehouse read in a thread; a locked file is a TransientError (write.patiently waits it out)."""
    try:
        return await asyncio.to_thread(call, *args)
    except WarehouseBusy as exc:
        raise TransientError(WAREHOUSE_BUSY, str(exc)) from exc
