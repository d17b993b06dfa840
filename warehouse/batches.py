"""Turning row objects into de-duplicated Arrow tables, the form DuckDB bulk-inserts fastest.

Every upsert in DuckDB silently keeps only one of two rows with the same key in one statement, so a
batch is de-duplicated by key here first (the last occurrence wins, at the first one's position).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TypeVar

import pyarrow as pa

T = TypeVar("T")

TS = pa.timestamp("us", tz="UTC")
UINT64_MASK = (1 << 64) - 1


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC datetime; a naive one is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def last_per_key(rows: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """One row per key: the last one given, kept at the position of the key's first occurrence."""
    return list({key(row): row for row in rows}.values())


def digest(*parts: object) -> str:
    """A short stable hex digest (keys and content hashes made here, never security)."""
    blob = "\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def arrow_table(columns: dict[str, tuple[pa.DataType, Sequence]]) -> pa.Table:
    """Build a table from {name: (type, values)}; all value lists have the batch's length."""
    return pa.table({name: pa.array(values, type=kind) for name, (kind, values) in columns.items()})
