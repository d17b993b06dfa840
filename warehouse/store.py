"""`Warehouse`: the one object the rest of sieve uses to read and write the DuckDB file.

Every write call is one transaction, and by default the file is open read-write only during the call,
so a read-only `sieve sql` (or a plain duckdb CLI) gets in between two batches of a running crawl
(DuckDB locks the whole file while a process holds it read-write). For bulk loads, `hold_s > 0` keeps
the file between calls and lets go when idle or when another sieve process asks (lease.py). Calls are
thread-safe within a process. A call either commits its whole batch or nothing: a crash mid-call
leaves the file as it was. `query` is the door for user SQL (`sieve sql`): sandboxed (sandbox.py);
sieve's own reads (stats, due, pages_to_extract, frontier_size) use trusted read-only connections.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from outcomes import RUN_STATUSES

from . import articles as article_store, fetch_log, frontier, runs
from .batches import arrow_table, forget, last_per_key
from .errors import WarehouseError, WarehouseMissing
from .fleet_calls import FleetCalls
from .reports import STATS_SQL, ExportFormat, export_articles
from .rows import (
    ArticleRow,
    ExtractionCounts,
    FetchRow,
    FrontierItem,
    FrontierRow,
    PageRow,
    QueryResult,
    Rejection,
    SourceRow,
)
from .sandbox import run_user_query

__all__ = ["RUN_STATUSES", "Warehouse"]

HEARTBEAT_EVERY_S = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


class Warehouse(FleetCalls):
    """The sieve warehouse at `path` (created with its parent directory on first write)."""

    # --- writes --------------------------------------------------------------------------------
    def upsert_sources(self, rows: Sequence[SourceRow]) -> None:
        rows = last_per_key(rows, lambda r: r.source_id)
        if not rows:
            return
        now = _now()
        batch = arrow_table(
            {
                "source_id": (pa.string(), [r.source_id for r in rows]),
                "config_hash": (pa.string(), [r.config_hash for r in rows]),
                "config_json": (pa.string(), [r.config_json for r in rows]),
            }
        )
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
            forget(con, "_sources")

    def start_run(self, kind: str, source_id: str | None, params: dict, *, exclusive: bool = False) -> str:
        """Open a run (recording this process's pid and host); first mark runs whose process died `crashed`.

        `exclusive` (runs that fetch): SourceBusy, and no run row, when a live crawl or backfill of the
        source, or a fleet's open claims on it, already hold it (runs.refuse_if_held); checked and
        inserted in one transaction, so of two runs started at once exactly one starts."""
        exclusive = exclusive and source_id is not None
        if exclusive:
            self.mark_crashed_runs()  # its own transaction: kept even when this run is refused
        with self._writing() as con:
            runs.mark_crashed(con, _now())
            if exclusive and source_id is not None:  # (exclusive implies a source: said again for mypy)
                runs.refuse_if_held(con, kind, source_id, _now())
            return runs.start_run(con, kind, source_id, params, _now())

    def finish_run(self, run_id: str, status: str, counts: dict[str, int], error: str | None = None) -> None:
        """Close a run with a final status of `outcomes.RUN_STATUSES` (ValueError otherwise). A good crawl
        (v_source_health, stats) is a completed crawl or backfill that fetched something."""
        with self._writing() as con:
            if not runs.finish_run(con, run_id, status, counts, error, _now()):
                raise WarehouseError(f"no crawl run {run_id!r} in {self.path}")

    def _due_heartbeats(self, rows: Sequence[FetchRow]) -> list[str]:
        """The batch's runs whose heartbeat is older than HEARTBEAT_EVERY here (one statement fewer per window)."""
        now = time.monotonic()
        due = [
            r
            for r in sorted({row.run_id for row in rows if row.run_id})
            if now - self._beats.get(r, -1e9) >= HEARTBEAT_EVERY_S
        ]
        self._beats.update((r, now) for r in due)
        return due

    def heartbeat(self, run_id: str) -> bool:
        """The run is alive (the pipeline calls it per commit window; record_fetches does it for its rows' runs).
        False when no such run is running."""
        with self._writing() as con:
            return runs.heartbeat(con, [run_id], _now()) > 0

    def mark_crashed_runs(self, *, stale_after: timedelta = runs.STALE_AFTER) -> list[str]:
        """Mark `crashed` the running runs whose process is gone (runs.py); returns their ids."""
        with self._writing() as con:
            return runs.mark_crashed(con, _now(), stale_after)

    def add_frontier(self, rows: Sequence[FrontierRow]) -> int:
        if not rows:
            return 0
        with self._writing() as con:
            return frontier.add_frontier(con, rows, _now())

    def make_due(self, source_id: str, kinds: Sequence[str], now: datetime, *, start_urls: Sequence[str] = ()) -> int:
        """Make `kinds` of the source due now (each run start). With `start_urls` (canonical, as seeded):
        mark them the source's start URLs, due at every call and never given up (frontier.py)."""
        with self._writing() as con:
            return frontier.make_due(con, source_id, kinds, now, self.max_failures, start_urls)

    def due(self, source_id: str, now: datetime, limit: int, kinds: Sequence[str] | None = None) -> list[FrontierItem]:
        with self._reading_schema() as con:
            return frontier.due(con, source_id, now, limit, kinds, self.max_failures)

    def record_fetches(
        self, rows: Sequence[FetchRow], *, revisit_after: timedelta, discovered: Sequence[FrontierRow] = ()
    ) -> None:
        """One transaction: append the fetch log, keep the HTML, update the frontier, queue new URLs."""
        if not rows and not discovered:
            return
        schedule = frontier.Schedule(
            revisit_s=revisit_after.total_seconds(),
            retry_base_s=self.retry_backoff.total_seconds(),
            backoff_cap_s=self.max_backoff.total_seconds(),
            retry_after_cap_s=self.retry_after_cap.total_seconds(),
        )
        with self._writing(len(rows)) as con:
            fetch_log.append_fetches(con, rows)
            fetch_log.upsert_pages(con, rows)
            frontier.update_after_fetches(con, rows, schedule, discovered, _now())
            runs.heartbeat(con, self._due_heartbeats(rows), _now())

    def record_window(
        self,
        fetches: Sequence[FetchRow],
        *,
        revisit_after: timedelta,
        discovered: Sequence[FrontierRow] = (),
        articles: Sequence[ArticleRow] = (),
        rejections: Sequence[Rejection] = (),
    ) -> tuple[int, ExtractionCounts]:
        """One transaction for a streaming writer's window: `record_fetches` then `record_extractions`.

        Either all of it commits or none of it, so a retried window neither stores twice nor counts twice.
        Returns (URLs new to the frontier, what the extractions did). Pages extracted in this window may
        be fetched in it too: their rows are written first.
        """
        if not fetches and not discovered and not articles and not rejections:
            return 0, ExtractionCounts()
        schedule = frontier.Schedule(
            revisit_s=revisit_after.total_seconds(),
            retry_base_s=self.retry_backoff.total_seconds(),
            backoff_cap_s=self.max_backoff.total_seconds(),
            retry_after_cap_s=self.retry_after_cap.total_seconds(),
        )
        now = _now()
        with self._writing(len(fetches) + len(articles) + len(rejections)) as con:
            fetch_log.append_fetches(con, fetches)
            fetch_log.upsert_pages(con, fetches)
            frontier.update_after_fetches(con, fetches, schedule, (), now)
            added = frontier.add_frontier(con, discovered, now)  # apart, to count what was new
            runs.heartbeat(con, self._due_heartbeats(fetches), now)
            counts = (
                article_store.record_extractions(con, articles, rejections)
                if articles or rejections
                else ExtractionCounts()
            )
            return added, counts

    def pages_to_extract(
        self,
        *,
        source_id: str | None,
        extractor_version: str,
        rules_versions: Mapping[str, str],
        only_stale: bool = True,
        limit: int = 200,
        after_url: str | None = None,
    ) -> list[PageRow]:
        with self._reading_schema() as con:
            return article_store.pages_to_extract(
                con,
                source_id=source_id,
                extractor_version=extractor_version,
                rules_versions=rules_versions,
                only_stale=only_stale,
                limit=limit,
                after_url=after_url,
            )

    def record_extractions(self, articles: Sequence[ArticleRow], rejections: Sequence[Rejection]) -> ExtractionCounts:
        if not articles and not rejections:
            return ExtractionCounts()
        with self._writing(len(articles) + len(rejections)) as con:
            return article_store.record_extractions(con, articles, rejections)

    def release(self) -> None:
        """Let other processes open the file now (the writer otherwise keeps it up to `hold_s` idle seconds)."""
        with self._held(self.write_lock_timeout_s):
            self._lease.release()

    # --- reads ---------------------------------------------------------------------------------
    def require(self) -> None:
        """WarehouseMissing (its message says what to run) when nothing was written at `path` yet."""
        if not self.path.exists():
            raise WarehouseMissing(self.path)

    def query(
        self, sql: str, params: Sequence | Mapping | None = None, *, timeout_s: float | None = None
    ) -> QueryResult:
        """Run one user SELECT, sandboxed (sandbox.py): QueryError for anything else, or past `timeout_s`.

        Its connection is a DuckDB instance of its own, so a writer lease this process holds is released first.
        """
        self.require()
        with self._held(self.lock_timeout_s):
            if self._lease.held:
                self._lease.release()
            return run_user_query(self.path, sql, params, lock_timeout_s=self.lock_timeout_s, timeout_s=timeout_s)

    def _select(self, sql: str, params: Sequence | Mapping | None = None) -> QueryResult:
        """sieve's own SQL, trusted, on a read-only connection (or the held lease's)."""
        self.require()
        with self._reading() as con:
            cursor = con.execute(sql, params) if params is not None else con.execute(sql)
            return QueryResult(columns=[d[0] for d in cursor.description], rows=cursor.fetchall())

    def stats(self) -> QueryResult:
        """Per source: articles, distinct, duplicates, pages, fetches, failures, last good crawl."""
        return self._select(STATS_SQL)

    def frontier_size(self, source_id: str) -> int:
        """How many URLs the frontier knows for a source (without releasing a held lease, unlike `query`)."""
        with self._reading_schema() as con:
            return int(con.execute("SELECT count(*) FROM frontier WHERE source_id = ?", [source_id]).fetchall()[0][0])

    def export(
        self,
        out_dir: Path,
        fmt: ExportFormat,
        *,
        source: str | None = None,
        since: date | None = None,
        distinct_only: bool = False,
        overwrite: bool = False,
    ) -> list[Path]:
        """Write articles to `out_dir` (reports.export_articles). A folder that is not empty is refused
        (ExportError) unless `overwrite`; even then only files of sieve's earlier export there are replaced."""
        self.require()
        with self._reading() as con:
            return export_articles(
                con, Path(out_dir), fmt, source=source, since=since, distinct_only=distinct_only, overwrite=overwrite
            )
