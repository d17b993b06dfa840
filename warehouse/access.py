"""The part of `Warehouse` that opens the file for a call: the in-process lock, the writer's lease,
the read-only paths, and the schema (migrations). store.py builds the calls on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import duckdb

from .connection import open_connection, path_lock, transaction
from .errors import WarehouseBusy
from .lease import lease_for
from .migrations import apply_migrations, check_not_too_new, current_version


class WarehouseFile:
    """The warehouse at `path` (created with its parent directory on first write): how each call gets it."""

    def __init__(
        self,
        path: str | Path,
        *,
        lock_timeout_s: float = 10.0,
        write_lock_timeout_s: float = 120.0,
        max_failures: int = 5,
        retry_backoff: timedelta = timedelta(minutes=5),
        hold_s: float = 0.0,
        max_backoff: timedelta = timedelta(hours=6),
        retry_after_cap: timedelta = timedelta(hours=6),
    ) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s  # readers (`query`, `sieve sql`) give up after this
        self.write_lock_timeout_s = write_lock_timeout_s  # writers wait longer: a crawl should outlast a query
        self.max_failures = max_failures  # consecutive failed fetches before a URL is given up
        self.retry_backoff = retry_backoff  # first back-off after a transient failure
        self.max_backoff = max_backoff  # longest back-off after transient failures
        self.retry_after_cap = retry_after_cap  # longest Retry-After the frontier honours
        # hold_s=0 (default): the file is opened read-write for each write call only. hold_s>0 (bulk loads):
        # the writer keeps it between calls for up to hold_s idle seconds and lets go at the next call when
        # another sieve process asks (lease.py): several times faster for batches of a few thousand rows.
        # Each Warehouse's own: the connection is shared per path in a process, the hold is per call.
        self.hold_s = hold_s
        self._lock = path_lock(self.path)
        self._lease = lease_for(self.path, self._lock)
        self._migrated = False
        self._beats: dict[str, float] = {}  # run_id -> when record_fetches last touched its heartbeat

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    # --- connections -------------------------------------------------------------------------
    @contextmanager
    def _held(self, timeout_s: float) -> Iterator[None]:
        """The in-process lock for this file, waited for no longer than the file lock would be."""
        if not self._lock.acquire(timeout=timeout_s):
            raise WarehouseBusy(
                f"warehouse {self.path} is busy in this process (another thread has held it for "
                f"{timeout_s:.1f}s); try again in a moment"
            )
        try:
            yield
        finally:
            self._lock.release()

    @contextmanager
    def _reading(self, *, timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        timeout_s = self.lock_timeout_s if timeout_s is None else timeout_s
        with self._held(timeout_s):
            if self._lease.held:  # this process holds the file: read through it
                with self._lease.reading() as con:
                    yield con
            else:
                with open_connection(self.path, read_only=True, timeout_s=timeout_s) as con:
                    yield con

    @contextmanager
    def _held_migrated(self) -> Iterator[None]:
        """The in-process lock, waited for as a writer waits, with the schema migrated (once) under it."""
        with self._held(self.write_lock_timeout_s):
            if not self._migrated:
                self.migrate()
            yield

    @contextmanager
    def _writing(self, rows: int = 0) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction of about `rows` rows (their count picks DuckDB's threads: connection.py)."""
        with (
            self._held_migrated(),
            self._lease.connection(self.write_lock_timeout_s, hold_s=self.hold_s, rows=rows) as con,
            transaction(con),
        ):
            yield con

    @contextmanager
    def _reading_schema(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for sieve's own reads: migrates first so the tables exist."""
        with self._held_migrated(), self._reading(timeout_s=self.write_lock_timeout_s) as con:
            yield con

    # --- schema --------------------------------------------------------------------------------
    def migrate(self, *, target: int | None = None) -> int:
        """Create or upgrade the schema; refuse (SchemaTooNew) a file from a newer sieve. Returns the version."""
        with self._held(self.write_lock_timeout_s):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lease.connection(self.write_lock_timeout_s, hold_s=self.hold_s) as con:
                if target is None:
                    version = apply_migrations(con, str(self.path))
                else:
                    version = apply_migrations(con, str(self.path), target=target)
            self._migrated = target is None
            return version

    def schema_version(self) -> int:
        with self._reading() as con:
            version = current_version(con)
        check_not_too_new(version, str(self.path))
        return version
