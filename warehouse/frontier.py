"""The frontier: every known URL, when it is due, and what its last fetch said.

Scheduling rules (all state lives here, so a killed crawl resumes from the table):
- a new URL is due at once (`next_fetch_at` NULL) and keeps its discovery order (`seq`);
- a success or 304 schedules the next visit at `fetched_at + revisit_after` and resets `attempts`;
- 429/425 (`rate_limited`) with a Retry-After: the next attempt is that many seconds later, capped at
  `retry_after_cap` (and at revisit_after);
- any other transient failure (`outcomes.is_transient`: timeout, connection, unreachable, 5xx, a 429
  without Retry-After) backs off: `retry_base * 2**(attempts-1)`, capped at `backoff_cap` (minutes to
  hours, never a week); any other failure (4xx, robots, not_html, ...) waits `revisit_after`;
- after `max_failures` consecutive failures the URL is given up on (`due` skips it) until a success
  resets it, except: a start URL (`is_start`) is never given up, nor a URL whose last failure was the
  host's rather than its own (`unreachable`: robots.txt could not be fetched; `rate_limited`);
- `make_due` brings a source's list pages forward at a run's start and makes its start URLs due at every
  scheduled run, unless the host asked to wait (Retry-After);
- `due` lists list/feed/sitemap URLs first, then articles, each in discovery order.

Writes find a batch's stored rows by `url_key` (batches.KEY_SQL), insert the new ones with a plain INSERT
(the primary key still checks them) and update the known ones by rowid: no ON CONFLICT and no join on
the VARCHAR url, the two forms that made a 100-row commit window cost hundreds of milliseconds on a
200k-URL frontier (bench/warehouse.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from outcomes import TRANSIENT_FETCH_ERRORS

from .batches import TS, arrow_table, forget, key_sql, last_per_key, stored_rows_sql, utc
from .rows import FetchRow, FrontierItem, FrontierRow

# frontier kinds that are list pages: the one definition (the pipeline imports it from here)
LIST_KINDS: tuple[str, ...] = ("list", "feed", "sitemap")
# Failures of the host rather than of the URL: they back off but never count towards giving a URL up.
HOST_FAILURES: tuple[str, ...] = ("unreachable", "rate_limited")
# Kept for callers of the old name; the vocabulary lives in outcomes.
TRANSIENT_ERRORS: tuple[str, ...] = TRANSIENT_FETCH_ERRORS

_LIVE = "(attempts < $max_failures OR is_start OR list_contains($host_failures, last_error))"


@dataclass(frozen=True)
class Schedule:
    """How long the frontier waits after a fetch (seconds)."""

    revisit_s: float
    retry_base_s: float
    backoff_cap_s: float
    retry_after_cap_s: float


def add_frontier(con: duckdb.DuckDBPyConnection, rows: Sequence[FrontierRow], now: datetime) -> int:
    """Insert URLs not yet known; known ones are left untouched. Returns how many were added."""
    rows = last_per_key(rows, lambda r: r.url)
    if not rows:
        return 0
    con.register(
        "_frontier_batch",
        arrow_table(
            {
                "idx": (pa.int64(), range(len(rows))),
                "url": (pa.string(), [r.url for r in rows]),
                "source_id": (pa.string(), [r.source_id for r in rows]),
                "kind": (pa.string(), [r.kind for r in rows]),
                "discovered_from": (pa.string(), [r.discovered_from for r in rows]),
            }
        ),
    )
    try:
        known = stored_rows_sql("frontier", "url_key", "b")
        added = con.execute(
            f"""
            INSERT INTO frontier (url, source_id, kind, discovered_from, discovered_at, seq, url_key)
            WITH b AS (SELECT *, {key_sql("url")} AS url_key FROM _frontier_batch)
            SELECT b.url, b.source_id, b.kind, b.discovered_from, $now,
                   (SELECT coalesce(max(seq), 0) FROM frontier) + row_number() OVER (ORDER BY b.idx), b.url_key
            FROM b ANTI JOIN {known} s USING (url_key)
            """,
            {"now": utc(now)},
        ).fetchall()[0][0]
    finally:
        forget(con, "_frontier_batch")
    return int(added)


def make_due(
    con: duckdb.DuckDBPyConnection,
    source_id: str,
    kinds: Sequence[str],
    now: datetime,
    max_failures: int,
    start_urls: Sequence[str] = (),
) -> int:
    """Bring the given kinds of one source forward to `now` (list pages at each run start); with
    `start_urls`, mark exactly those as the source's start URLs and make them due whatever their
    failures (a host outage must not retire a source), unless the host asked to wait (Retry-After)."""
    params = {
        "now": utc(now),
        "source": source_id,
        "kinds": list(kinds),
        "max_failures": max_failures,
        "host_failures": list(HOST_FAILURES),
    }
    if start_urls:
        con.execute(
            "UPDATE frontier SET is_start = list_contains($starts, url) "
            "WHERE source_id = $source AND is_start IS DISTINCT FROM list_contains($starts, url)",
            {"source": source_id, "starts": list(start_urls)},
        )
    return int(
        con.execute(
            f"""
        UPDATE frontier SET next_fetch_at = $now
        WHERE source_id = $source AND next_fetch_at > $now
          AND ((is_start AND last_error IS DISTINCT FROM 'rate_limited')
               OR (list_contains($kinds, kind) AND {_LIVE}))
        """,
            params,
        ).fetchall()[0][0]
    )


def due(
    con: duckdb.DuckDBPyConnection,
    source_id: str,
    now: datetime,
    limit: int,
    kinds: Sequence[str] | None,
    max_failures: int,
) -> list[FrontierItem]:
    rows = con.execute(
        f"""
        SELECT url, source_id, kind, etag, last_modified, attempts FROM frontier
        WHERE source_id = $source
          AND (next_fetch_at IS NULL OR next_fetch_at <= $now)
          AND {_LIVE}
          AND ($kinds IS NULL OR list_contains($kinds, kind))
        ORDER BY CASE WHEN list_contains($list_kinds, kind) THEN 0 ELSE 1 END, seq
        LIMIT $limit
        """,
        {
            "source": source_id,
            "now": utc(now),
            "max_failures": max_failures,
            "host_failures": list(HOST_FAILURES),
            "kinds": None if kinds is None else list(kinds),
            "list_kinds": list(LIST_KINDS),
            "limit": limit,
        },
    ).fetchall()
    return [FrontierItem(*row) for row in rows]


_FETCH_STATE = (
    "attempts",
    "fetch_count",
    "last_status",
    "last_error",
    "last_fetched_at",
    "last_ok_at",
    "next_fetch_at",
)
_VALIDATORS = ("etag", "last_modified")


def update_after_fetches(
    con: duckdb.DuckDBPyConnection,
    rows: Sequence[FetchRow],
    schedule: Schedule,
    discovered: Sequence[FrontierRow] = (),
    now: datetime | None = None,
) -> None:
    """Record the latest fetch of each URL in the frontier, and queue `discovered` URLs not yet known
    (one INSERT for both: statements are what a small commit window pays for).

    A fetch no newer than the one already recorded changes nothing, so a replayed batch is a no-op.
    """
    rows = last_per_key(sorted(rows, key=lambda r: utc(r.fetched_at)), lambda r: r.url)
    if not rows:
        add_frontier(con, discovered, now or datetime.now(UTC))
        return
    fetched = {r.url for r in rows}
    found = [r for r in last_per_key(discovered, lambda r: r.url) if r.url not in fetched]
    # found and fetched in one batch (a fleet worker fetches the articles it finds): it was found there
    found_on = {r.url: r.discovered_from for r in discovered if r.url in fetched}
    con.register(
        "_discovered",
        arrow_table(
            {
                "idx": (pa.int64(), range(len(found))),
                "url": (pa.string(), [r.url for r in found]),
                "source_id": (pa.string(), [r.source_id for r in found]),
                "kind": (pa.string(), [r.kind for r in found]),
                "discovered_from": (pa.string(), [r.discovered_from for r in found]),
            }
        ),
    )
    con.register(
        "_fetched_batch",
        arrow_table(
            {
                "idx": (pa.int64(), range(len(rows))),
                "url": (pa.string(), [r.url for r in rows]),
                "source_id": (pa.string(), [r.source_id for r in rows]),
                "kind": (pa.string(), [r.kind for r in rows]),
                "status": (pa.int32(), [r.status for r in rows]),
                "error": (pa.string(), [r.error for r in rows]),
                "etag": (pa.string(), [r.etag for r in rows]),
                "last_modified": (pa.string(), [r.last_modified for r in rows]),
                "retry_after_s": (pa.float64(), [r.retry_after_s for r in rows]),
                "fetched_at": (TS, [r.fetched_at for r in rows]),
                "discovered_from": (pa.string(), [found_on.get(r.url) for r in rows]),
            }
        ),
    )
    try:
        stored = stored_rows_sql("frontier", "url_key", "b", "attempts, fetch_count, last_ok_at, last_fetched_at")
        # The new fetch state of every URL of the batch, from its stored state (none for unknown URLs).
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _fetch_stage AS
            WITH b AS (SELECT *, {key_sql("url")} AS url_key FROM _fetched_batch)
            SELECT b.idx, b.url, b.source_id, b.kind, b.discovered_from, b.url_key, s.rid,
                   (s.rid IS NULL OR s.last_fetched_at IS NULL OR b.fetched_at > s.last_fetched_at) AS newer,
                   CASE WHEN b.error IS NULL THEN 0 ELSE coalesce(s.attempts, 0) + 1 END AS attempts,
                   coalesce(s.fetch_count, 0) + 1 AS fetch_count,
                   b.status AS last_status, b.error AS last_error, b.fetched_at AS last_fetched_at,
                   CASE WHEN b.error IS NULL THEN b.fetched_at ELSE s.last_ok_at END AS last_ok_at,
                   b.etag, b.last_modified,
                   b.error IS NULL AND (b.status IS DISTINCT FROM 304 OR b.etag IS NOT NULL) AS new_etag,
                   b.error IS NULL AND (b.status IS DISTINCT FROM 304 OR b.last_modified IS NOT NULL) AS new_last_modified,
                   b.fetched_at + to_seconds(CASE
                       WHEN b.error IS NULL THEN $revisit
                       WHEN b.error = 'rate_limited' AND b.retry_after_s IS NOT NULL
                           THEN least(greatest(b.retry_after_s, 0), $retry_after_cap)
                       WHEN list_contains($transient, b.error)
                           THEN least($backoff_cap, $retry_base * pow(2, least(coalesce(s.attempts, 0), 30)))
                       ELSE $revisit END) AS next_fetch_at
            FROM b LEFT JOIN {stored} s USING (url_key)
            """,
            {
                "revisit": float(schedule.revisit_s),
                "retry_base": float(schedule.retry_base_s),
                "backoff_cap": float(min(schedule.backoff_cap_s, schedule.revisit_s)),
                "retry_after_cap": float(min(schedule.retry_after_cap_s, schedule.revisit_s)),
                "transient": list(TRANSIENT_FETCH_ERRORS),
            },
        )
        # A failure keeps the validators; a 304 keeps those it does not send again.
        con.execute(
            f"""
            UPDATE frontier SET {", ".join(f"{c} = x.{c}" for c in _FETCH_STATE)},
                   {", ".join(f"{c} = CASE WHEN x.new_{c} THEN x.{c} ELSE frontier.{c} END" for c in _VALIDATORS)}
            FROM _fetch_stage x WHERE frontier.rowid = x.rid AND x.newer
            """
        )
        # URLs fetched but never queued come first (with their fetch state), then the new discoveries.
        known = stored_rows_sql("frontier", "url_key", "d")
        state = ", ".join(_FETCH_STATE + _VALIDATORS)
        con.execute(
            f"""
            INSERT INTO frontier (url, source_id, kind, discovered_from, discovered_at, seq, url_key, {state})
            WITH d AS (SELECT *, {key_sql("url")} AS url_key FROM _discovered),
            fresh AS (
                SELECT 0 AS part, idx, url, source_id, kind, discovered_from, last_fetched_at AS discovered_at,
                       url_key, {", ".join(_FETCH_STATE)},
                       {", ".join(f"CASE WHEN new_{c} THEN {c} END AS {c}" for c in _VALIDATORS)}
                FROM _fetch_stage WHERE rid IS NULL
                UNION ALL
                SELECT 1, d.idx, d.url, d.source_id, d.kind, d.discovered_from, $now, d.url_key,
                       0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL
                FROM d ANTI JOIN {known} s USING (url_key)
            )
            SELECT url, source_id, kind, discovered_from, discovered_at,
                   (SELECT coalesce(max(seq), 0) FROM frontier) + row_number() OVER (ORDER BY part, idx), url_key, {state}
            FROM fresh
            """,
            {"now": utc(now or datetime.now(UTC))},
        )
    finally:
        forget(con, "_fetched_batch")
        forget(con, "_discovered")
