"""The append-only fetch log and the latest raw HTML per URL (`fetches`, `pages`).

Raw pages are kept so extraction can be replayed with new rules without touching the network.
`fetch_id` is a hash of (run, url, time, attempts, outcome), so replaying a batch appends nothing.
"""
from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from .batches import TS, arrow_table, digest, last_per_key, utc
from .rows import FetchRow


def html_hash(html: str) -> str:
    return digest(html)


def fetch_id(row: FetchRow) -> str:
    return digest(row.run_id, row.url, utc(row.fetched_at).isoformat(), row.attempts, row.status, row.error)


def append_fetches(con: duckdb.DuckDBPyConnection, rows: Sequence[FetchRow]) -> int:
    rows = last_per_key(rows, fetch_id)
    if not rows:
        return 0
    batch = arrow_table({
        "fetch_id": (pa.string(), [fetch_id(r) for r in rows]),
        "run_id": (pa.string(), [r.run_id for r in rows]),
        "source_id": (pa.string(), [r.source_id for r in rows]),
        "url": (pa.string(), [r.url for r in rows]),
        "kind": (pa.string(), [r.kind for r in rows]),
        "final_url": (pa.string(), [r.final_url for r in rows]),
        "status": (pa.int32(), [r.status for r in rows]),
        "error": (pa.string(), [r.error for r in rows]),
        "detail": (pa.string(), [r.detail for r in rows]),
        "content_type": (pa.string(), [r.content_type for r in rows]),
        "bytes": (pa.int64(), [r.nbytes for r in rows]),
        "elapsed_ms": (pa.int32(), [r.elapsed_ms for r in rows]),
        "encoding": (pa.string(), [r.encoding for r in rows]),
        "replaced": (pa.bool_(), [bool(r.replaced) for r in rows]),
        "attempts": (pa.int32(), [r.attempts for r in rows]),
        "fetched_at": (TS, [utc(r.fetched_at) for r in rows]),
    })
    con.register("_fetch_batch", batch)
    try:
        return int(con.execute(
            "INSERT INTO fetches BY NAME SELECT * FROM _fetch_batch ON CONFLICT DO NOTHING"
        ).fetchall()[0][0])
    finally:
        con.unregister("_fetch_batch")


def upsert_pages(con: duckdb.DuckDBPyConnection, rows: Sequence[FetchRow]) -> int:
    """Keep the newest HTML per URL; `changed_at` moves only when the HTML hash changes."""
    with_html = [r for r in rows if r.html is not None]
    rows = last_per_key(sorted(with_html, key=lambda r: utc(r.fetched_at)), lambda r: r.url)
    if not rows:
        return 0
    batch = arrow_table({
        "url": (pa.string(), [r.url for r in rows]),
        "source_id": (pa.string(), [r.source_id for r in rows]),
        "kind": (pa.string(), [r.kind for r in rows]),
        "final_url": (pa.string(), [r.final_url for r in rows]),
        "html": (pa.string(), [r.html for r in rows]),
        "html_hash": (pa.string(), [html_hash(r.html) for r in rows]),
        "encoding": (pa.string(), [r.encoding for r in rows]),
        "content_type": (pa.string(), [r.content_type for r in rows]),
        "fetched_at": (TS, [utc(r.fetched_at) for r in rows]),
    })
    con.register("_page_batch", batch)
    try:
        return int(con.execute(
            """
            INSERT INTO pages (url, source_id, kind, final_url, html, html_hash, encoding, content_type,
                               fetched_at, changed_at)
            SELECT url, source_id, kind, final_url, html, html_hash, encoding, content_type, fetched_at, fetched_at
            FROM _page_batch
            ON CONFLICT (url) DO UPDATE SET
                source_id = excluded.source_id, kind = excluded.kind, final_url = excluded.final_url,
                html = excluded.html, encoding = excluded.encoding, content_type = excluded.content_type,
                changed_at = CASE WHEN pages.html_hash = excluded.html_hash THEN pages.changed_at
                                  ELSE excluded.fetched_at END,
                html_hash = excluded.html_hash,
                fetched_at = excluded.fetched_at
            WHERE excluded.fetched_at >= pages.fetched_at
            """
        ).fetchall()[0][0])
    finally:
        con.unregister("_page_batch")
