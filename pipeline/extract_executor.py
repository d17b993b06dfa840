"""Extraction through a `concurrent.futures.Executor`: a thread of this process (small runs, tests)
or a Dask cluster (`flows.dask_runner.TaskRunnerExecutor`). The same interface as the process pool
in extract.py, without the per-page CPU budget (a thread cannot be stopped mid-page; Dask workers
are the cluster's own)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

from extractors.model import Rejection, Rules
from pipeline.intake import Page, PageIntake, ResultSink

log = logging.getLogger("sieve.pipeline")


class ExecutorExtraction(PageIntake):
    """Chunks to an Executor: a thread here (`executor=None`), or a Dask cluster's TaskRunnerExecutor."""

    def __init__(
        self,
        rules: Rules,
        on_result: ResultSink,
        *,
        executor: Callable[[], Executor] | None = None,
        workers: int = 1,
        chunk_pages: int = 16,
        waiting_cap: int = 0,
    ) -> None:
        self.rules = rules
        self.on_result = on_result
        self._factory = executor
        self.calls = max(1, workers) * 2  # chunks in flight
        self.chunk_pages = chunk_pages
        super().__init__(waiting_cap or 8 * max(1, workers))
        self.versions: tuple[str, str] | None = None
        self._running = 0
        self.done = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        from extractors import EXTRACTOR_VERSION, rules_version

        self._loop = asyncio.get_running_loop()
        self._executor = self._factory() if self._factory is not None else ThreadPoolExecutor(1, "sieve-extract")
        self.versions = (EXTRACTOR_VERSION, rules_version(self.rules))

    async def known_versions(self) -> tuple[str, str]:
        assert self.versions is not None
        return self.versions

    def _dispatch(self) -> None:
        from pipeline.extract_worker import extract_chunk

        while self._waiting and self._running < self.calls and not self._closing:
            size = max(1, min(self.chunk_pages, len(self._waiting) // (self.calls - self._running)))
            job = [self._waiting.popleft() for _ in range(min(size, len(self._waiting)))]
            self._running += 1
            future = self._loop.run_in_executor(
                self._executor, extract_chunk, [(p.url, p.html, p.fetched_at) for p in job], self.rules
            )
            future.add_done_callback(functools.partial(self._finished, job))
        if len(self._waiting) < self.waiting_cap:
            self._space.set()

    def _finished(self, job: list[Page], future: asyncio.Future) -> None:
        self._running -= 1
        if future.cancelled():
            return
        if future.exception() is not None:
            self.error = future.exception()
            log.error("extraction call failed: %r", self.error)
            outputs = [
                (
                    p.url,
                    Rejection(
                        url=p.url,
                        reason="internal_error",
                        detail=repr(self.error)[:300],
                        extractor_version=self.versions[0] if self.versions else "",
                        rules_version=self.versions[1] if self.versions else "",
                    ),
                )
                for p in job
            ]
        else:
            outputs = future.result()
        for page, (_, result) in zip(job, outputs, strict=True):
            self._in_flight -= 1
            self.done += 1
            self.on_result(page, result)
        if self._in_flight == 0:
            self._idle.set()
        self._dispatch()

    async def close(self, *, cancel: bool = False) -> None:
        if not cancel:
            await self.drain()
        self._closing = True
        self._executor.shutdown(wait=not cancel, cancel_futures=cancel)
