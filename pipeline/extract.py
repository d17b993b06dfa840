"""The extraction stage: pages (fetched now, or stored and stale) go to extraction workers, outcomes
come back one page at a time and go on to the writer.

`ProcessExtraction` (the default) runs its own worker processes, forked from a fork server that has
the extractor preloaded. Each worker has one chunk at a time, sized to the backlog (1 page when
pages are scarce, up to `chunk_pages` when they pile up), so pickling stays cheap and no page waits
behind a full chunk. A page past its CPU budget is a rejection `timeout` and its worker is replaced;
a worker stuck where the budget cannot reach it is killed by wall time; a worker that dies takes only
its current page with it (rejection `internal_error`), the rest of its chunk goes to another one.
`submit` waits while `waiting_cap` pages are queued: fetching slows to extraction's pace.

`extract_executor.ExecutorExtraction` hands chunks to a `concurrent.futures.Executor` instead (a
thread of this process, or a Dask cluster): same interface, no budget enforcement.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import socket
import struct
import time
from multiprocessing.connection import Connection
from typing import Any

from extractors.model import Rejection, Rules
from pipeline.intake import Page, PageIntake, ResultSink

log = logging.getLogger("sieve.pipeline")
_LENGTH, _LONG_LENGTH = struct.Struct("!i"), struct.Struct("!Q")  # multiprocessing.connection's framing
WORKER_MODULE = "pipeline.extract_worker"


STILLBORN_LIMIT = 3


def fork_context() -> Any:
    """forkserver, not fork: the parent runs threads (Prefect, httpx, DuckDB) that a fork would copy
    mid-state. The fork server imports the extractor once; each worker is a fork of it."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_MODULE])
    return context


def prestart() -> None:
    """Start the fork server now (it preloads the extractor in its own process, about a second), so the
    first workers fork at once later. The CLI calls this while it imports Prefect."""
    from multiprocessing import forkserver

    fork_context()
    forkserver.ensure_running()


def _serve(sock: socket.socket, *args: Any) -> None:
    """A worker's entry point, named here so this process never imports the extractor itself (the fork
    server has it preloaded: the import below is free in the worker). The worker speaks
    multiprocessing's framing (a 4-byte length, then the pickle) on its end of the socket pair."""
    from pipeline.extract_worker import serve

    serve(Connection(sock.detach()), *args)


class _Worker:
    __slots__ = ("process", "sock", "writer", "reader_task", "job", "index", "since", "killed", "ready", "born")

    def __init__(self, process: Any, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock  # this side of the socket pair, non-blocking
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task | None = None
        self.job: list[Page] | None = None
        self.index = 0  # the page of `job` being extracted
        self.since = 0.0  # when that page started (monotonic)
        self.killed = False  # by the wall-time watchdog
        self.ready = False  # said hello
        self.born = time.monotonic()


class ProcessExtraction(PageIntake):
    def __init__(
        self,
        rules: Rules,
        on_result: ResultSink,
        *,
        workers: int,
        budget_s: float = 10.0,
        chunk_pages: int = 16,
        waiting_cap: int = 0,
    ) -> None:
        self.rules = rules
        self.on_result = on_result
        self.workers = max(1, workers)
        self.budget_s = budget_s
        self.hard_s = 2 * budget_s + 5.0  # wall seconds on one page before the worker is killed
        self.ready_s = 60.0  # wall seconds for a new worker to say hello (the fork server preloads, ~1 s)
        self.chunk_pages = chunk_pages
        super().__init__(waiting_cap or 8 * self.workers)
        self.versions: tuple[str, str] | None = None  # (extractor, rules), from the first worker's hello
        self._versions_known = asyncio.Event()
        self._live: list[_Worker] = []
        self._tasks: set[asyncio.Future] = set()
        self.done = 0
        self.timeouts = 0
        self.replaced = 0
        self.stillborn = 0  # workers in a row that died before saying hello: a broken install, not a page
        self.error: BaseException | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._context = fork_context()
        for _ in range(self.workers):
            self._spawn()
        self._tasks.add(asyncio.ensure_future(self._watchdog()))

    def _spawn(self) -> None:
        future = self._loop.run_in_executor(None, self._start_process)
        self._tasks.add(future)
        future.add_done_callback(self._started)

    def _start_process(self) -> _Worker:
        ours, theirs = socket.socketpair()
        process = self._context.Process(
            target=_serve, args=(theirs, self.rules, self.budget_s, os.getpid()), name="sieve-extract", daemon=True
        )
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def _started(self, future: asyncio.Future) -> None:
        self._tasks.discard(future)
        if future.cancelled():
            return
        if future.exception() is not None:
            self.error = future.exception()
            log.error("could not start an extraction worker: %s", self.error)
            self._versions_known.set()
            self._fail_waiting(f"no extraction worker: {self.error}")
            return
        worker: _Worker = future.result()
        if self._closing:
            worker.process.kill()
            return
        self._live.append(worker)
        worker.reader_task = asyncio.ensure_future(self._read(worker))

    async def _read(self, worker: _Worker) -> None:
        """One worker's messages, read without blocking the loop (a busy machine may be slow to
        schedule the worker mid-message: the loop serves fetches meanwhile)."""
        reader, worker.writer = await asyncio.open_connection(sock=worker.sock)
        while True:
            try:
                (size,) = _LENGTH.unpack(await reader.readexactly(4))
                if size == -1:  # multiprocessing's framing for messages over 2 GiB
                    (size,) = _LONG_LENGTH.unpack(await reader.readexactly(8))
                message = pickle.loads(await reader.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                self._died(worker)
                return
            self._received(worker, message)

    async def close(self, *, cancel: bool = False) -> None:
        """Stop the workers: at once when `cancel` (pages in flight are dropped), else once idle."""
        if not cancel:
            await self.drain()
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        processes = [w.process for w in self._live]
        for worker in list(self._live):
            self._retire(worker, kill=cancel)
        if not cancel:
            await asyncio.to_thread(_join, processes)

    async def known_versions(self) -> tuple[str, str]:
        """(extractor version, rules version), as the first worker reported them."""
        await self._versions_known.wait()
        if self.versions is None:
            raise RuntimeError(f"no extraction worker started: {self.error}")
        return self.versions

    # ---- workers -------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        if self.error is not None and not self._live and not self._closing:  # none left, none coming
            self._fail_waiting(f"no extraction worker: {self.error}")
            return
        idle = [w for w in self._live if w.ready and w.job is None and not w.killed]
        for n, worker in enumerate(idle):
            if not self._waiting:
                break
            size = max(1, min(self.chunk_pages, len(self._waiting) // (len(idle) - n)))
            job = [self._waiting.popleft() for _ in range(min(size, len(self._waiting)))]
            worker.job, worker.index, worker.since = job, 0, time.monotonic()
            data = pickle.dumps([(p.url, p.html, p.fetched_at) for p in job], protocol=pickle.HIGHEST_PROTOCOL)
            assert worker.writer is not None  # ready (said hello) implies attached
            try:  # buffered by the transport: never blocks the loop
                worker.writer.write(
                    _LENGTH.pack(len(data)) + data
                    if len(data) < 0x7FFFFFFF
                    else _LENGTH.pack(-1) + _LONG_LENGTH.pack(len(data)) + data
                )
            except (ConnectionError, OSError):  # it died before reading: its pages go back, intact
                worker.job = None
                self._waiting.extendleft(reversed(job))
                self._retire(worker, kill=True)
                self._replace()
        if len(self._waiting) < self.waiting_cap:
            self._space.set()

    def _received(self, worker: _Worker, message: Any) -> None:
        if message[0] == "hello":
            worker.ready = True
            self.stillborn = 0
            if self.versions is None:
                self.versions = (message[1], message[2])
                self._versions_known.set()
            self._dispatch()
            return
        job = worker.job
        assert job is not None
        if message[0] == "timeout":
            self._give_up(
                worker,
                job,
                message[1],
                "timeout",
                f"extraction passed its CPU budget of {self.budget_s:g} s; the worker was replaced",
            )
            return
        index, result = message
        worker.index, worker.since = index + 1, time.monotonic()
        if index + 1 == len(job):
            worker.job = None
        self._deliver(job[index], result)
        if worker.job is None:
            self._dispatch()

    def _give_up(self, worker: _Worker, job: list[Page], index: int, reason: str, detail: str) -> None:
        """The page at `index` ends the worker: it becomes a rejection, the rest of the chunk is requeued."""
        worker.job = None
        self._waiting.extendleft(reversed(job[index + 1 :]))
        if reason == "timeout":
            self.timeouts += 1
        log.warning("%s: %s", job[index].url, detail)
        extractor_version, rules_version = self.versions or ("", "")
        self._deliver(
            job[index],
            Rejection(
                url=job[index].url,
                reason=reason,
                detail=detail,
                extractor_version=extractor_version,
                rules_version=rules_version,
            ),
        )
        self._retire(worker, kill=True)
        self._replace()

    def _died(self, worker: _Worker) -> None:
        if worker not in self._live:
            return
        job = worker.job
        self._retire(worker, kill=True)
        if not worker.ready:
            worker.process.join(0.2)
            self.stillborn += 1
            if self.stillborn >= STILLBORN_LIMIT and self.error is None:  # replacing it again would loop for ever
                how = (
                    f"was not ready within {self.ready_s:g} s; a script that runs the pipeline needs an "
                    "`if __name__ == '__main__':` guard, as with any multiprocessing"
                    if worker.killed
                    else f"exited with code {worker.process.exitcode}"
                )
                self.error = RuntimeError(
                    f"{self.stillborn} extraction workers in a row died before they were ready (the last {how})"
                )
                log.error("%s", self.error)
                self._versions_known.set()
            if self.error is not None:  # no page can be extracted: the waiting ones, and any later, fail
                self._fail_waiting(f"no extraction worker: {self.error}")
                return
        if job is not None:
            worker.process.join(0.2)
            if worker.killed:
                reason, detail = (
                    "timeout",
                    (
                        f"extraction passed {self.hard_s:g} s of wall time (budget "
                        f"{self.budget_s:g} s CPU); the worker was killed and replaced"
                    ),
                )
            else:
                reason, detail = "internal_error", f"the extraction worker died (exit code {worker.process.exitcode})"
            worker.job = job
            self._give_up(worker, job, worker.index, reason, detail)
            return
        self._replace()

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        if worker in self._live:
            self._live.remove(worker)
        if worker.reader_task is not None and worker.reader_task is not asyncio.current_task():
            worker.reader_task.cancel()
        if worker.writer is not None:
            worker.writer.close()  # the worker reads EOF and exits
        else:
            worker.sock.close()
        if kill and worker.process.is_alive():
            worker.process.kill()

    def _replace(self) -> None:
        if not self._closing and self.error is None:
            self.replaced += 1
            self._spawn()

    def _deliver(self, page: Page, result: Any) -> None:
        self._in_flight -= 1
        self.done += 1
        if self._in_flight == 0:
            self._idle.set()
        self.on_result(page, result)

    def _fail_waiting(self, detail: str) -> None:
        if self._live:
            return  # the others carry on
        while self._waiting:
            page = self._waiting.popleft()
            extractor_version, rules_version = self.versions or ("", "")
            self._deliver(
                page,
                Rejection(
                    url=page.url,
                    reason="internal_error",
                    detail=detail,
                    extractor_version=extractor_version,
                    rules_version=rules_version,
                ),
            )

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for worker in list(self._live):
                if worker.killed:
                    continue
                if (worker.job is not None and now - worker.since > self.hard_s) or (
                    not worker.ready and now - worker.born > self.ready_s
                ):
                    worker.killed = True
                    worker.process.kill()  # its socket then reads EOF: _died() takes it from there


def _join(processes: list[Any], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
