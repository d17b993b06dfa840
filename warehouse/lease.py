"""The writer's lease on the DuckDB file: keep it open across batches, let go when idle or asked.

Opening a DuckDB file and closing it (which checkpoints) costs 50-100 ms of CPU, more than writing a
batch of a thousand articles; a writer that reopened the file per batch could not bulk-load fast. So
the writer keeps its read-write connection between write calls and gives the file up:
- after `hold_s` without a write (a timer thread closes it); `hold_s` is the writing Warehouse's own,
  given with each call: the last write decides how long the file stays held (0: closed at once);
- at the start of the next write call when another opener has asked: a blocked `sieve sql` (or any
  sieve process) touches `<file>.waiting` while it retries, and the writer then closes, pauses
  `YIELD_S` so the waiter gets in, and reopens (waiting its turn like anyone else);
- before this process forks, and at exit.
Every batch is still one transaction: a crash loses nothing committed (DuckDB replays its WAL) and
keeps no partial batch. Reads in this process while the lease is held use a read-only transaction on
a cursor of the same database (DuckDB refuses a second, read-only open of a file in one process).
A plain `duckdb` CLI does not ask: it gets in once the writer has been idle for `hold_s`.

There is one lease per file per process because DuckDB allows one read-write connection (instance) per
file per process: every Warehouse object on the path shares it, and nothing else of theirs.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .connection import WRITER_THREADS, configure, connect, request_path, writer_threads

YIELD_S = 0.15
CHECKPOINT_THRESHOLD = "512MB"
# DuckDB's memory cap while the closing checkpoint runs: what DuckDB has pinned (a window's rows, indexes)
# plus `CHECKPOINT_HEADROOM_BYTES`. Table blocks it merely cached are dropped to make room (reread if needed).
# Uncapped, the checkpoint's peak grew with the file; capped at 256 MB, the CLI still rose 30-40 MB in each
# checkpoint of a 20,000-article crawl; capped this way, not at all (peak 250-256 MB against 258-277).
# If DuckDB cannot keep to that cap, `CHECKPOINT_MEMORY_LIMIT` is tried (a bulk load of 20,000 pages of 20 KB
# peaked at 504 MB under it against 910 uncapped), then none. Only the checkpoint is capped: the writer's own
# statements keep DuckDB's default, so a large warehouse's indexes never make a window fail.
CHECKPOINT_HEADROOM_BYTES = 16 << 20
CHECKPOINT_MEMORY_LIMIT = "256MB"
# A checkpoint merges a table's small row groups (up to three row groups' worth), rewriting them in memory;
# the writer's small row groups (connection.WRITER_ROW_GROUP_SIZE) bound that. Merges stay on: with
# `max_vacuum_tasks = 0` every letting go leaves a row group of its own, never merged, and 200 lettings go
# of 20 articles (yields to `sieve sql`, short scheduled runs) made a 260 MB file against 32 MB with merges.
_LEASES: weakref.WeakSet[WriterLease] = weakref.WeakSet()
_BY_PATH: dict[str, WriterLease] = {}
_BY_PATH_GUARD = threading.Lock()


def lease_for(path: Path, lock: threading.RLock) -> WriterLease:
    """The process's lease for one file (every Warehouse object on that path shares its connection)."""
    key = str(path.resolve())
    with _BY_PATH_GUARD:
        lease = _BY_PATH.get(key)
        if lease is None:
            lease = _BY_PATH[key] = WriterLease(path, lock)
        return lease


class WriterLease:
    """One per warehouse file per process (shares the file's process lock)."""

    def __init__(self, path: Path, lock: threading.RLock) -> None:
        self.path = path
        self.lock = lock
        self.hold_s = 0.0  # of the last write call
        self._con: duckdb.DuckDBPyConnection | None = None
        self._threads = WRITER_THREADS  # DuckDB threads the held connection runs
        self._opened_ns = 0
        self._last_used = 0.0
        self._timer: threading.Timer | None = None
        _LEASES.add(self)

    @property
    def held(self) -> bool:
        return self._con is not None

    def _someone_waiting(self) -> bool:
        try:
            return request_path(self.path).stat().st_mtime_ns >= self._opened_ns
        except OSError:
            return False

    @contextmanager
    def connection(self, timeout_s: float, *, hold_s: float, rows: int = 0) -> Iterator[duckdb.DuckDBPyConnection]:
        """The read-write connection for one write call of `rows` rows (caller holds `lock`), kept `hold_s` idle
        seconds after."""
        self.hold_s = hold_s
        if self._con is not None and self._someone_waiting():
            self.release()
            time.sleep(YIELD_S)
        if self._con is None:
            self._con = connect(self.path, read_only=False, timeout_s=timeout_s)
            # Checkpoint when letting go (close) rather than every 16 MB of WAL: a checkpoint rewrites the
            # table's last, growing row group, so at DuckDB's default row group size frequent ones made a bulk
            # load quadratic (the writer's small row groups bound that rewrite now; the policy was not
            # re-measured). Readers never replay this WAL: they get in only after the close, which checkpoints.
            self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
            # With small row groups, a batch of a few thousand rows fills some inside its transaction, and DuckDB
            # would write those to the file there and then: the checkpoint's work, done in the write call
            # (batches of 5,000: 6,000 rows/s against 11,000, the same with the letting go counted).
            self._con.execute("SET enable_optimistic_write = false")
            self._opened_ns = time.time_ns()  # requests older than this were served (or were our own)
            self._threads = WRITER_THREADS  # what connect() set
        if (threads := writer_threads(rows)) != self._threads:
            self._con.execute(f"SET threads = {threads}")
            self._threads = threads
        try:
            yield self._con
        except BaseException:
            self.release()  # a failed batch: start the next from a fresh connection
            raise
        finally:
            self._last_used = time.monotonic()
            if self.hold_s <= 0:
                self.release()
            elif self._con is not None:
                self._arm_timer()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only transaction on the held connection (caller holds `lock` and checked `held`)."""
        assert self._con is not None
        cursor = configure(self._con.cursor(), writer=True)
        try:
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            try:
                yield cursor
            finally:
                try:
                    cursor.execute("ROLLBACK")
                except duckdb.Error:
                    pass
        finally:
            cursor.close()

    def release(self) -> None:
        """Close the connection (checkpointing it) so other processes can open the file."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        con, self._con = self._con, None
        if con is not None:
            _checkpoint_capped(con)
            con.close()
            _return_free_heap()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.hold_s, self._release_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _release_if_idle(self) -> None:
        if not self.lock.acquire(timeout=self.hold_s):
            return  # busy writing: the call's end re-arms the timer
        try:
            if self._con is not None and time.monotonic() - self._last_used >= self.hold_s * 0.9:
                self.release()
        finally:
            self.lock.release()


def _checkpoint_capped(con: duckdb.DuckDBPyConnection) -> None:
    """CHECKPOINT under the tightest cap DuckDB keeps to (see `CHECKPOINT_HEADROOM_BYTES`); if it keeps to
    none, `close()` checkpoints uncapped as it always did. Nothing is at stake either way: what is not
    checkpointed stays in the WAL, replayed at the next open."""
    pinned = _pinned_bytes(con)
    tight = [] if pinned is None else [f"{pinned + CHECKPOINT_HEADROOM_BYTES}B"]
    for cap in [*tight, CHECKPOINT_MEMORY_LIMIT]:
        try:
            con.execute(f"SET memory_limit = '{cap}'")
            con.execute("CHECKPOINT")
            return
        except duckdb.Error:
            continue
    try:
        con.execute("RESET memory_limit")
    except duckdb.Error:
        pass


def _pinned_bytes(con: duckdb.DuckDBPyConnection) -> int | None:
    """What DuckDB holds beyond the stored tables' cached blocks (BASE_TABLE), which it can drop and reread;
    None if DuckDB does not say."""
    try:
        row = con.execute(
            "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag <> 'BASE_TABLE'"
        ).fetchone()
    except duckdb.Error:
        return None
    return int(row[0]) if row else None


def _return_free_heap() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim). Closing the connection frees
    DuckDB's memory, but pages in the middle of the heap stay counted in RSS: without this, the writer's RSS
    after each letting go crept 183 -> 196 MB over a 20,000-article crawl."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_all() -> None:
    """Let go of every file this process holds (before a fork, at exit)."""
    for lease in list(_LEASES):
        with lease.lock:
            lease.release()


atexit.register(release_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=release_all)
