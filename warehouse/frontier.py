"""The frontier: every known URL, when it is due, and what its last fetch said.

Scheduling rules (all state lives here, so a killed crawl resumes from the table):
- a new URL is due at once (`next_fetch_at` NULL) and keeps its discovery order (`seq`);
- a success or 304 schedules the next visit at `fetched_at + revisit_after` and resets `attempts`;
- a transient failure (timeout, connection, 5xx) backs off: `retry_base * 2**(attempts-1)`, capped
  at `revisit_after`; any other failure (4xx, robots, not_html, ...) waits `revisit_after`;
- after `max_failures` consecutive failures the URL is given up on (`due` skips it) until a
  success resets it;
- `due` lists list/feed/sitemap URLs first, then articles, each in discovery order.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from .batches import TS, arrow_table, last_per_key, utc
from .rows import FetchRow, FrontierItem, FrontierRow

LIST_KINDS: tuple[str, ...] = ("list", "feed", "sitemap")
TRANSIENT_ERRORS: tuple[str, ...] = ("timeout", "connection", "http_5xx")


def add_frontier(con: duckdb.DuckDBPyConnection, rows: Sequence[FrontierRow], now: datetime) -> int:
    """Insert URLs not yet known; known ones are left untouched. Returns how many were added."""
    rows = last_per_key(rows, lambda r: r.url)
    if not rows:
        return 0
    batch = arrow_table({
        "idx": (pa.int64(), range(len(rows))),
        "url": (pa.string(), [r.url for r in rows]),
        "source_id": (pa.string(), [r.source_id for r in rows]),
        "kind": (pa.string(), [r.kind for r in rows]),
        "discovered_from": (pa.string(), [r.discovered_from for r in rows]),
    })
    con.register("_frontier_batch", batch)
    try:
        added = con.execute(
            """
            INSERT INTO frontier (url, source_id, kind, discovered_from, discovered_at, seq)
            SELECT b.url, b.source_id, b.kind, b.discovered_from, $now,
                   (SELECT coalesce(max(seq), 0) FROM frontier) + b.idx + 1
            FROM _frontier_batch b
            WHERE b.url NOT IN (SELECT url FROM frontier)
            ON CONFLICT DO NOTHING
            """,
            {"now": utc(now)},
        ).fetchall()[0][0]
    finally:
        con.unregister("_frontier_batch")
    return int(added)


def make_due(con: duckdb.DuckDBPyConnection, source_id: str, kinds: Sequence[str], now: datetime,
             max_failures: int) -> int:
    """Bring the given kinds of one source forward to `now` (e.g. list pages at each run start)."""
    return int(con.execute(
        """
        UPDATE frontier SET next_fetch_at = $now
        WHERE source_id = $source AND list_contains($kinds, kind)
          AND next_fetch_at > $now AND attempts < $max_failures
        """,
        {"now": utc(now), "source": source_id, "kinds": list(kinds), "max_failures": max_failures},
    ).fetchall()[0][0])


def due(con: duckdb.DuckDBPyConnection, source_id: str, now: datetime, limit: int,
        kinds: Sequence[str] | None, max_failures: int) -> list[FrontierItem]:
    rows = con.execute(
        """
        SELECT url, source_id, kind, etag, last_modified, attempts FROM frontier
        WHERE source_id = $source
          AND (next_fetch_at IS NULL OR next_fetch_at <= $now)
          AND attempts < $max_failures
          AND ($kinds IS NULL OR list_contains($kinds, kind))
        ORDER BY CASE WHEN list_contains($list_kinds, kind) THEN 0 ELSE 1 END, seq
        LIMIT $limit
        """,
        {"source": source_id, "now": utc(now), "max_failures": max_failures,
         "kinds": None if kinds is None else list(kinds), "list_kinds": list(LIST_KINDS), "limit": limit},
    ).fetchall()
    return [FrontierItem(*row) for row in rows]


def update_after_fetches(con: duckdb.DuckDBPyConnection, rows: Sequence[FetchRow], *,
                         revisit_after_s: float, retry_base_s: float) -> None:
    """Record the latest fetch of each URL in the frontier (adding URLs fetched but never queued).

    A fetch no newer than the one already recorded changes nothing, so a replayed batch is a no-op.
    """
    rows = last_per_key(sorted(rows, key=lambda r: utc(r.fetched_at)), lambda r: r.url)
    if not rows:
        return
    batch = arrow_table({
        "idx": (pa.int64(), range(len(rows))),
        "url": (pa.string(), [r.url for r in rows]),
        "source_id": (pa.string(), [r.source_id for r in rows]),
        "kind": (pa.string(), [r.kind for r in rows]),
        "status": (pa.int32(), [r.status for r in rows]),
        "error": (pa.string(), [r.error for r in rows]),
        "etag": (pa.string(), [r.etag for r in rows]),
        "last_modified": (pa.string(), [r.last_modified for r in rows]),
        "fetched_at": (TS, [utc(r.fetched_at) for r in rows]),
    })
    con.register("_fetched_batch", batch)
    try:
        con.execute(
            """
            INSERT INTO frontier (url, source_id, kind, discovered_from, discovered_at, seq)
            SELECT b.url, b.source_id, b.kind, NULL, b.fetched_at,
                   (SELECT coalesce(max(seq), 0) FROM frontier) + b.idx + 1
            FROM _fetched_batch b
            WHERE b.url NOT IN (SELECT url FROM frontier)
            ON CONFLICT DO NOTHING
            """
        )
        con.execute(
            """
            UPDATE frontier SET
                attempts        = CASE WHEN b.error IS NULL THEN 0 ELSE frontier.attempts + 1 END,
                fetch_count     = frontier.fetch_count + 1,
                last_status     = b.status,
                last_error      = b.error,
                last_fetched_at = b.fetched_at,
                last_ok_at      = CASE WHEN b.error IS NULL THEN b.fetched_at ELSE frontier.last_ok_at END,
                etag            = CASE WHEN b.error IS NOT NULL THEN frontier.etag
                                       WHEN b.status = 304 THEN coalesce(b.etag, frontier.etag)
                                       ELSE b.etag END,
                last_modified   = CASE WHEN b.error IS NOT NULL THEN frontier.last_modified
                                       WHEN b.status = 304 THEN coalesce(b.last_modified, frontier.last_modified)
                                       ELSE b.last_modified END,
                next_fetch_at   = b.fetched_at + to_seconds(CASE
                    WHEN b.error IS NULL THEN $revisit
                    WHEN list_contains($transient, b.error)
                        THEN least($revisit, $retry_base * pow(2, least(frontier.attempts, 30)))
                    ELSE $revisit END)
            FROM _fetched_batch b
            WHERE frontier.url = b.url
              AND (frontier.last_fetched_at IS NULL OR b.fetched_at > frontier.last_fetched_at)
            """,
            {"revisit": float(revisit_after_s), "retry_base": float(retry_base_s),
             "transient": list(TRANSIENT_ERRORS)},
        )
    finally:
        con.unregister("_fetched_batch")
