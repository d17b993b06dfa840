"""`Warehouse`: the one object the rest of sieve uses to read and write the DuckDB file.

Every write call is one transaction, and by default the file is open read-write only during the call,
so a read-only `sieve sql` (or a plain duckdb CLI) gets in between two batches of a running crawl
(DuckDB locks the whole file while a process holds it read-write). For bulk loads, `hold_s > 0` keeps
the file between calls and lets go when idle or when another sieve process asks (lease.py). Calls are
thread-safe within a process. A call either commits its whole batch or nothing: a crash mid-call
leaves the file as it was.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from . import articles as article_store
from . import fetch_log, frontier
from .batches import arrow_table, last_per_key
from .connection import open_connection, path_lock, transaction
from .lease import lease_for
from .errors import QueryError, WarehouseBusy, WarehouseError
from .migrations import apply_migrations, check_not_too_new, current_version
from .reports import STATS_SQL, ExportFormat, export_articles
from .rows import (ArticleRow, ExtractionCounts, FetchRow, FrontierItem, FrontierRow, PageRow, QueryResult,
                   Rejection, SourceRow)

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "cancelled")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Warehouse:
    """The sieve warehouse at `path` (created with its parent directory on first write)."""

    def __init__(self, path: str | Path, *, lock_timeout_s: float = 10.0, write_lock_timeout_s: float = 120.0,
                 max_failures: int = 5, retry_backoff: timedelta = timedelta(minutes=5), hold_s: float = 0.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s            # readers (`query`, `sieve sql`) give up after this
        self.write_lock_timeout_s = write_lock_timeout_s  # writers wait longer: a crawl should outlast a query
        self.max_failures = max_failures                # consecutive failed fetches before a URL is given up
        self.retry_backoff = retry_backoff              # first back-off after a transient failure
        self._lock = path_lock(self.path)
        # hold_s=0 (default): the file is opened read-write for each write call only. hold_s>0 (bulk loads):
        # the writer keeps it between calls for up to hold_s idle seconds and lets go at the next call when
        # another sieve process asks (lease.py): several times faster for batches of a few thousand rows.
        self._lease = lease_for(self.path, self._lock, hold_s=hold_s)
        self._migrated = False

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    # --- connections -------------------------------------------------------------------------
    @contextmanager
    def _held(self, timeout_s: float) -> Iterator[None]:
        """The in-process lock for this file, waited for no longer than the file lock would be."""
        if not self._lock.acquire(timeout=timeout_s):
            raise WarehouseBusy(f"warehouse {self.path} is busy in this process (another thread has held it for "
                                f"{timeout_s:.1f}s); try again in a moment")
        try:
            yield
        finally:
            self._lock.release()

    @contextmanager
    def _reading(self, *, timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        timeout_s = self.lock_timeout_s if timeout_s is None else timeout_s
        with self._held(timeout_s):
            if self._lease.held:                 # this process holds the file: read through it
                with self._lease.reading() as con:
                    yield con
            else:
                with open_connection(self.path, read_only=True, timeout_s=timeout_s) as con:
                    yield con

    @contextmanager
    def _writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._held(self.write_lock_timeout_s):
            if not self._migrated:
                self.migrate()
            with self._lease.connection(self.write_lock_timeout_s) as con, transaction(con):
                yield con

    @contextmanager
    def _reading_schema(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for sieve's own reads: migrates first so the tables exist."""
        with self._held(self.write_lock_timeout_s):
            if not self._migrated:
                self.migrate()
            with self._reading(timeout_s=self.write_lock_timeout_s) as con:
                yield con

    # --- schema --------------------------------------------------------------------------------
    def migrate(self, *, target: int | None = None) -> int:
        """Create or upgrade the schema; refuse (SchemaTooNew) a file from a newer sieve. Returns the version."""
        with self._held(self.write_lock_timeout_s):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lease.connection(self.write_lock_timeout_s) as con:
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

    # --- writes --------------------------------------------------------------------------------
    def upsert_sources(self, rows: Sequence[SourceRow]) -> None:
        rows = last_per_key(rows, lambda r: r.source_id)
        if not rows:
            return
        now = _now()
        batch = arrow_table({
            "source_id": (pa.string(), [r.source_id for r in rows]),
            "config_hash": (pa.string(), [r.config_hash for r in rows]),
            "config_json": (pa.string(), [r.config_json for r in rows]),
        })
        with self._writing() as con:
            con.register("_sources", batch)
            con.execute(
                """
                INSERT INTO sources (source_id, config_hash, config_json, first_seen, updated_at)
                SELECT source_id, config_hash, config_json, $now, $now FROM _sources
                ON CONFLICT (source_id) DO UPDATE SET
                    config_json = excluded.config_json, config_hash = excluded.config_hash,
                    updated_at = excluded.updated_at
                WHERE sources.config_hash IS DISTINCT FROM excluded.config_hash
                """,
                {"now": now},
            )
            con.unregister("_sources")

    def start_run(self, kind: str, source_id: str | None, params: dict) -> str:
        run_id = f"{_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        with self._writing() as con:
            con.execute(
                "INSERT INTO crawl_runs (run_id, kind, source_id, params, status, started_at) "
                "VALUES (?, ?, ?, ?, 'running', ?)",
                [run_id, kind, source_id, json.dumps(params, default=str, ensure_ascii=False), _now()],
            )
        return run_id

    def finish_run(self, run_id: str, status: str, counts: dict[str, int], error: str | None = None) -> None:
        """Close a run. `status` 'completed' marks a good crawl (see v_source_health); 'failed' a failed one."""
        with self._writing() as con:
            found = con.execute(
                "UPDATE crawl_runs SET status = ?, counts = ?, error = ?, finished_at = ? WHERE run_id = ?",
                [status, json.dumps(counts, default=str, ensure_ascii=False), error, _now(), run_id],
            ).fetchall()[0][0]
            if not found:
                raise WarehouseError(f"no crawl run {run_id!r} in {self.path}")

    def add_frontier(self, rows: Sequence[FrontierRow]) -> int:
        if not rows:
            return 0
        with self._writing() as con:
            return frontier.add_frontier(con, rows, _now())

    def make_due(self, source_id: str, kinds: Sequence[str], now: datetime) -> int:
        with self._writing() as con:
            return frontier.make_due(con, source_id, kinds, now, self.max_failures)

    def due(self, source_id: str, now: datetime, limit: int, kinds: Sequence[str] | None = None) -> list[FrontierItem]:
        with self._reading_schema() as con:
            return frontier.due(con, source_id, now, limit, kinds, self.max_failures)

    def record_fetches(self, rows: Sequence[FetchRow], *, revisit_after: timedelta,
                       discovered: Sequence[FrontierRow] = ()) -> None:
        """One transaction: append the fetch log, keep the HTML, update the frontier, queue new URLs."""
        if not rows and not discovered:
            return
        with self._writing() as con:
            fetch_log.append_fetches(con, rows)
            fetch_log.upsert_pages(con, rows)
            frontier.update_after_fetches(con, rows, revisit_after_s=revisit_after.total_seconds(),
                                          retry_base_s=self.retry_backoff.total_seconds())
            frontier.add_frontier(con, discovered, _now())

    def record_window(self, fetches: Sequence[FetchRow], *, revisit_after: timedelta,
                      discovered: Sequence[FrontierRow] = (), articles: Sequence[ArticleRow] = (),
                      rejections: Sequence[Rejection] = ()) -> tuple[int, ExtractionCounts]:
        """One transaction for a streaming writer's window: `record_fetches` then `record_extractions`.

        Either all of it commits or none of it, so a retried window neither stores twice nor counts twice.
        Returns (URLs new to the frontier, what the extractions did). Pages extracted in this window may
        be fetched in it too: their rows are written first.
        """
        if not fetches and not discovered and not articles and not rejections:
            return 0, ExtractionCounts()
        with self._writing() as con:
            fetch_log.append_fetches(con, fetches)
            fetch_log.upsert_pages(con, fetches)
            frontier.update_after_fetches(con, fetches, revisit_after_s=revisit_after.total_seconds(),
                                          retry_base_s=self.retry_backoff.total_seconds())
            added = frontier.add_frontier(con, discovered, _now())
            counts = (article_store.record_extractions(con, articles, rejections) if articles or rejections
                      else ExtractionCounts())
            return added, counts

    def pages_to_extract(self, *, source_id: str | None, extractor_version: str, rules_versions: Mapping[str, str],
                         only_stale: bool = True, limit: int = 200, after_url: str | None = None) -> list[PageRow]:
        with self._reading_schema() as con:
            return article_store.pages_to_extract(
                con, source_id=source_id, extractor_version=extractor_version, rules_versions=rules_versions,
                only_stale=only_stale, limit=limit, after_url=after_url)

    def record_extractions(self, articles: Sequence[ArticleRow], rejections: Sequence[Rejection]) -> ExtractionCounts:
        if not articles and not rejections:
            return ExtractionCounts()
        with self._writing() as con:
            return article_store.record_extractions(con, articles, rejections)

    def release(self) -> None:
        """Let other processes open the file now (the writer otherwise keeps it up to `hold_s` idle seconds)."""
        with self._held(self.write_lock_timeout_s):
            self._lease.release()

    # --- reads ---------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence | Mapping | None = None) -> QueryResult:
        """Run SQL on a read-only connection (retrying a held lock up to `lock_timeout_s`)."""
        with self._reading() as con:
            try:
                cursor = con.execute(sql, params) if params is not None else con.execute(sql)
                rows = cursor.fetchall() if cursor.description else []
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from exc
            columns = [d[0] for d in cursor.description] if cursor.description else []
            return QueryResult(columns=columns, rows=rows)

    def stats(self) -> QueryResult:
        """Per source: articles, distinct, duplicates, pages, fetches, failures, last good crawl."""
        return self.query(STATS_SQL)

    def export(self, out_dir: Path, fmt: ExportFormat, *, source: str | None = None, since: date | None = None,
               distinct_only: bool = False) -> list[Path]:
        with self._reading() as con:
            return export_articles(con, Path(out_dir), fmt, source=source, since=since, distinct_only=distinct_only)
