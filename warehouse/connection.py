"""Opening the DuckDB file: briefly, with the right mode, retrying while another process holds it.

DuckDB lets exactly one process hold a file read-write, and while it does no other process may open
it at all (not even read-only); read-only openers in turn block a writer. So sieve keeps the file
open only briefly: readers for one call, the writer for one transaction or a short lease; an opener that finds the
file locked retries with jittered backoff until its timeout, then raises `WarehouseBusy`. While it
waits it touches `<file>.waiting`, which a sieve writer holding the file (lease.py) takes as a request
to let go at the end of its current batch.

Inside one process DuckDB refuses a read-only and a read-write connection to the same file at the
same time, so all opens of one path in a process are serialised by a per-path lock (`path_lock`).

The writer attaches the file with small row groups, runs small batches on one DuckDB thread and pins
glibc's mmap threshold: all three keep its memory flat however large the file grows (see
`WRITER_ROW_GROUP_SIZE`, `WRITER_THREADS` and `pin_mmap_threshold`).
"""

from __future__ import annotations

import ctypes
import functools
import random
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .errors import WarehouseBusy, WarehouseError, WarehouseMissing

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()
_HOLDER_PID = re.compile(r"PID (\d+)")

# Rows per row group the writer appends (DuckDB's default: 122,880). Each checkpoint merges a table's small
# row groups, up to three of this size, and rewrites what it merges in memory: at the default a crawl's writer
# rewrote the whole table at each letting go, and its peak grew with the file (CLI process 222 -> 332 MB
# from 1,000 to 20,000 articles; 291 MB at 2,048, both with the mmap pin below: bench/findings_race.md).
# It is a setting of the attaching connection, not of the file: readers and other tools need nothing.
WRITER_ROW_GROUP_SIZE = 2048
CATALOG = "warehouse"  # the writer's name for the attached file (its connection's default database)
# glibc serves a block above its mmap threshold with a mapping of its own, returned to the system when
# freed. The threshold starts at 128 KiB but rises to the size of any such block freed, after which DuckDB's
# 256 KiB blocks come from the heap, whose free space a long crawl fragments: the writer's RSS crept about
# 8 MB per letting go (free heap 5 -> 54 MB over 10,000 articles). Set by mallopt, it stays where it is put.
MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
# DuckDB threads of the writer's instance for a batch under `WRITER_PARALLEL_ROWS` rows (its default, one per
# core, for larger ones). A crawl's windows are a few hundred rows, where a second thread gained nothing
# measurable (`bench.warehouse --parts extractions`, batches of 500 and 1,000), while each thread kept memory of
# its own: the CLI's peak over a 20,000-article crawl was 274-278 MB with two threads and 243-247 with one (215
# at 1,000 articles either way). Batches of 5,000 were faster on two (about 17,000-19,000 rows/s against
# 12,000-15,000). Readers keep the default: a `sieve sql` query is where parallel scans pay.
WRITER_THREADS = 1
WRITER_PARALLEL_ROWS = 2048


def path_lock(path: Path) -> threading.RLock:
    """The process-wide lock for one warehouse file (shared by every Warehouse object on that path)."""
    key = str(path.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def request_path(path: Path) -> Path:
    """Sidecar file a blocked opener touches to ask the process holding the file to let go (see lease.py)."""
    return path.with_name(path.name + ".waiting")


def _ask_holder_to_yield(path: Path) -> None:
    try:
        request_path(path).touch()
    except OSError:
        pass  # a read-only directory: the holder's idle timeout still frees it


def configure(con: duckdb.DuckDBPyConnection, *, writer: bool = False) -> duckdb.DuckDBPyConnection:
    """UTC, no progress bar; on the writer's connections (its cursors too) the attached file as default."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # it would print into `sieve sql` output
    if writer:
        con.execute(f"USE {CATALOG}")
    return con


def writer_threads(rows: int) -> int:
    """DuckDB threads for a write of `rows` rows (see `WRITER_THREADS`)."""
    return WRITER_THREADS if rows < WRITER_PARALLEL_ROWS else default_threads()


@functools.cache
def default_threads() -> int:
    """DuckDB's own thread count on this machine (what a fresh connection gets)."""
    con = duckdb.connect()
    try:
        row = con.execute("SELECT current_setting('threads')").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 1


@functools.cache  # once per process: the setting stays
def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at `MMAP_THRESHOLD_BYTES` (see there). False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    if read_only:
        return configure(duckdb.connect(str(path), read_only=True))
    pin_mmap_threshold()
    con = duckdb.connect()  # an in-memory database with the file attached: ATTACH takes the row group size
    try:
        quoted = "'" + str(path).replace("'", "''") + "'"
        con.execute(f"SET threads = {WRITER_THREADS}")
        con.execute(f"ATTACH {quoted} AS {CATALOG} (ROW_GROUP_SIZE {WRITER_ROW_GROUP_SIZE})")
        return configure(con, writer=True)
    except BaseException:
        con.close()
        raise


def connect(path: Path, *, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Open the file in UTC, retrying a held file lock up to `timeout_s` (asking the holder to yield)."""
    if read_only and not path.exists():
        raise WarehouseMissing(path)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    max_delay = 0.08 if read_only else 0.05  # a waiting writer polls faster: batches matter more than queries
    while True:
        try:
            return _open(path, read_only)
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise WarehouseError(f"cannot open warehouse {path}: {exc}") from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = _HOLDER_PID.search(str(exc))
                who = f"process {holder.group(1)}" if holder else "another process"
                mode = "read" if read_only else "write to"
                raise WarehouseBusy(
                    f"cannot {mode} warehouse {path}: {who} has held it for {timeout_s:.1f}s "
                    f"(a crawl writing a batch, or a long query). Try again in a moment, or raise the lock timeout."
                ) from exc
            _ask_holder_to_yield(path)
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 1.6, max_delay)


@contextmanager
def open_connection(path: Path, *, read_only: bool, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect`, closed again on exit."""
    con = connect(path, read_only=read_only, timeout_s=timeout_s)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception: a batch is written whole or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    con.execute("COMMIT")
