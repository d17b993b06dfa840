"""What every extraction stage shares: a page to extract, where its outcome goes, and the bounded
intake in front of the workers, and which stage a run gets (`start_extraction`: worker processes,
pipeline/extract.py, or an Executor, extract_executor.py).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from extractors.model import Article, Rejection, Rules

if TYPE_CHECKING:
    from pipeline.extract import ProcessExtraction
    from pipeline.extract_executor import ExecutorExtraction
    from pipeline.spec import StreamOptions


@dataclass(slots=True)
class Page:
    url: str
    html: str
    fetched_at: datetime
    stored: bool = False  # re-extracted from the warehouse, not fetched by this run
    html_hash: str | None = None  # the stored HTML's hash, pinned on the outcome


ResultSink = Callable[[Page, Article | Rejection], None]


class PageIntake:
    """The pages waiting for extraction, bounded: `submit` waits while `waiting_cap` pages are queued
    (fetching slows to extraction's pace), `drain` until every page submitted was delivered. The
    subclass's `_dispatch` hands waiting pages to its workers."""

    def __init__(self, waiting_cap: int) -> None:
        self.waiting_cap = waiting_cap
        self._waiting: deque[Page] = deque()
        self._space = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0
        self._closing = False

    @property
    def in_flight(self) -> int:
        """Pages submitted and not yet delivered."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def submit(self, page: Page) -> None:
        while len(self._waiting) >= self.waiting_cap and not self._closing:
            self._space.clear()
            await self._space.wait()
        self._in_flight += 1
        self._idle.clear()
        self._waiting.append(page)
        self._dispatch()

    async def drain(self) -> None:
        await self._idle.wait()

    def _dispatch(self) -> None:
        raise NotImplementedError


def start_extraction(
    rules: Rules, on_result: ResultSink, opts: StreamOptions
) -> ProcessExtraction | ExecutorExtraction:
    """The run's extraction stage, started: worker processes with a CPU budget per page (the default), or
    the given Executor (a Dask cluster) or this process's threads (`extract_here`)."""
    from pipeline.extract import ProcessExtraction
    from pipeline.extract_executor import ExecutorExtraction

    workers = opts.extract_workers or (os.cpu_count() or 1)
    stage: ProcessExtraction | ExecutorExtraction
    if opts.executor is not None or opts.extract_here:
        stage = ExecutorExtraction(
            rules,
            on_result,
            executor=opts.executor,
            workers=workers,
            chunk_pages=opts.chunk_pages,
            waiting_cap=opts.pages_waiting,
        )
    else:
        stage = ProcessExtraction(
            rules,
            on_result,
            workers=workers,
            budget_s=opts.extract_budget_s,
            chunk_pages=opts.chunk_pages,
            waiting_cap=opts.pages_waiting,
        )
    stage.start()
    return stage
