"""Turning row objects into de-duplicated Arrow tables, the form DuckDB bulk-inserts fastest.

Every upsert in DuckDB silently keeps only one of two rows with the same key in one statement, so a
batch is de-duplicated by key here first (the last occurrence wins, at the first one's position).
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar, overload

import duckdb
import pyarrow as pa

from .rows import ArticleRow, Rejection

T = TypeVar("T")

TS = pa.timestamp("us", tz="UTC")
UINT64_MASK = (1 << 64) - 1


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """Aware UTC datetime; a naive one is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def last_per_key(rows: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """One row per key: the last one given, kept at the position of the key's first occurrence."""
    return list({key(row): row for row in rows}.values())


def digest(*parts: object) -> str:
    """A short stable hex digest (keys and content hashes made here, never security)."""
    blob = "\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


# Integer keys of string keys and hex digests, made by the same SQL wherever they are made (migrations,
# writers). A writer finds a batch's stored rows by joining on these numeric columns only: DuckDB has no
# point lookups (a rowid or key IN-list is a semi-join that scans every row of each column read), and
# scanning strings is what costs (measured 2 ms for a 128-bit key against 15 ms for the VARCHAR id on
# 200k rows). 128 bits (md5_number), so the key is the identity: no string comparison after.
KEY_SQL = "md5_number({col})"  # UHUGEINT of a URL or an article id
HEX_KEY_SQL = "TRY_CAST('0x' || {col} AS UHUGEINT)"  # UHUGEINT of a 32-hex-digit digest (row_hash, html_hash)


def key_sql(col: str) -> str:
    return KEY_SQL.format(col=col)


def hex_key_sql(col: str) -> str:
    return HEX_KEY_SQL.format(col=col)


def hex_of_key_sql(col: str) -> str:
    """The 32-hex-digit digest back from its HEX_KEY_SQL key."""
    return f"lpad(lower(hex({col})), 32, '0')"


def stored_rows_sql(table: str, key: str, batch: str, columns: str = "") -> str:
    """A subquery: `rid` (rowid), the key and `columns` (numeric ones: every row is scanned for them) of
    the rows of `table` whose `key` some row of `batch` (a table with that key column) has."""
    wanted = "".join(f", t.{c.strip()}" for c in columns.split(",") if c.strip())
    return (
        f"(SELECT t.rowid AS rid, t.{key}{wanted} "
        f"FROM {table} t JOIN (SELECT DISTINCT {key} FROM {batch}) k ON t.{key} = k.{key})"
    )


def arrow_table(columns: dict[str, tuple[pa.DataType, Sequence]]) -> pa.Table:
    """Build a table from {name: (type, values)}; all value lists have the batch's length."""
    return pa.table({name: pa.array(values, type=kind) for name, (kind, values) in columns.items()})


def forget(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Unregister Python objects from `con`. After a failed statement DuckDB refuses (the transaction is
    aborted) and the caller's own error is the one to see; the connection is then closed, objects and all."""
    for name in names:
        try:
            con.unregister(name)
        except duckdb.Error:
            pass


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic collector off for one batch's work, back on after (if it was on).

    A batch allocates tens of thousands of objects (row tuples, column lists, candidates) that are all
    acyclic garbage when it ends; in a process holding many live objects each generation-2 pass the
    allocations trigger walks all of them. The few cycles made meanwhile are collected later."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


OUTCOME_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("source_id", pa.string()),
        ("outcome", pa.string()),
        ("article_id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("extractor_version", pa.string()),
        ("rules_version", pa.string()),
        ("html_hash", pa.string()),
        ("extracted_at", TS),
    ]
)


def outcome_table(batch: pa.Table | None, articles: Sequence[ArticleRow], rejections: Sequence[Rejection]) -> pa.Table:
    """One row per page URL: articles (their `page_url`, from the Arrow batch) then rejections, the last
    one given for a URL winning (so a page both extracted and rejected keeps the rejection)."""
    parts = []
    if batch is not None:
        n = batch.num_rows
        parts.append(
            pa.table(
                [
                    batch["page_url"],
                    batch["source_id"],
                    pa.repeat("article", n),
                    batch["article_id"],
                    pa.nulls(n, pa.string()),
                    pa.nulls(n, pa.string()),
                    batch["extractor_version"],
                    batch["rules_version"],
                    batch["html_hash"],
                    batch["extracted_at"],
                ],
                schema=OUTCOME_SCHEMA,
            )
        )
    if rejections:
        parts.append(
            pa.table(
                [
                    pa.array([r.url for r in rejections], pa.string()),
                    pa.array([r.source_id for r in rejections], pa.string()),
                    pa.repeat("rejected", len(rejections)),
                    pa.nulls(len(rejections), pa.string()),
                    pa.array([r.reason for r in rejections], pa.string()),
                    pa.array([r.detail for r in rejections], pa.string()),
                    pa.array([r.extractor_version for r in rejections], pa.string()),
                    pa.array([r.rules_version for r in rejections], pa.string()),
                    pa.array([r.html_hash for r in rejections], pa.string()),
                    pa.array([r.extracted_at for r in rejections], TS),
                ],
                schema=OUTCOME_SCHEMA,
            )
        )
    table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    urls = [r.page_url or r.url for r in articles] + [r.url for r in rejections]
    last = {url: i for i, url in enumerate(urls)}
    return table if len(last) == len(urls) else table.take(sorted(last.values()))
