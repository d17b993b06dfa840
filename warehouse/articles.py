"""Articles and extraction outcomes: idempotent batched upserts, staleness.

A batch of articles is written in one pass per table: its stored versions are found by an integer
key, those of new or changed articles are deleted, duplicates are folded (duplicates.py), and the new
and changed articles are inserted with what they keep of their past (first_seen, seen_seq). An
unchanged article (same `row_hash`) stays where it is: only the columns outside its hash (versions
and extracted_at) are updated, keeping updated_at and dup_of. Stored text is never read: on a
200k-row table reading it costs about a millisecond a row.

Every page processed leaves one row in `extractions` (article or rejection, with the versions and
the HTML hash used), which is what `pages_to_extract` compares against.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC

import duckdb
import pyarrow as pa

from .batches import (
    TS,
    UINT64_MASK,
    arrow_table,
    forget,
    gc_paused,
    hex_key_sql,
    hex_of_key_sql,
    key_sql,
    last_per_key,
    outcome_table,
    stored_rows_sql,
    utc,
)
from .duplicates import fold_duplicates
from .rows import ArticleRow, ExtractionCounts, PageRow, Rejection


def row_hashes(rows: Sequence[ArticleRow], texts: Sequence[bytes]) -> list[str]:
    """Hash of everything that makes each article "changed" (versions and times excluded).

    The text enters as length and CRC-32 of its UTF-8 bytes (already made for Arrow) next to the
    extractor's sha256 `content_hash`: a change that slips past both is not a practical risk. The value
    is stored (`articles.row_hash`), so this formula is part of the schema: change it only with a
    migration that recomputes the stored hashes.
    """
    out: list[str] = []
    append, blake2b, crc32, mask = out.append, hashlib.blake2b, zlib.crc32, UINT64_MASK
    for row, text in zip(rows, texts, strict=True):
        when, published = row.published_at, None
        if when is not None:  # utc(), skipped for the usual aware-UTC value (same isoformat)
            published = (when if when.tzinfo is UTC else utc(when)).isoformat()
        meta = (
            row.source_id,
            row.url,
            row.page_url or row.url,
            row.title,
            row.author,
            row.account,
            published,
            row.content_hash or None,
            row.simhash & mask,
            row.flags,
            len(text),
            crc32(text),
        )
        append(blake2b(repr(meta).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest())
    return out


_HEX = frozenset("0123456789abcdefABCDEF")


def content_key(content_hash: str | None) -> int | None:
    """64-bit integer form of a content hash (its first 16 hex digits), joined far faster than the string."""
    if not content_hash:
        return None
    head = content_hash[:16]
    if len(head) == 16 and _HEX.issuperset(head):
        return int(head, 16)
    return int.from_bytes(hashlib.blake2b(content_hash.encode(), digest_size=8).digest(), "big")


def _article_batch(rows: Sequence[ArticleRow]) -> pa.Table:
    """The batch as Arrow, keys and hashes included. Datetimes go in as given: Arrow reads a naive one as
    UTC and converts an aware one, which is `utc()`'s rule, without a Python call per value."""
    texts = [r.text.encode("utf-8", "surrogatepass") for r in rows]
    table = arrow_table(
        {
            "idx": (pa.int64(), range(len(rows))),
            "article_id": (pa.string(), [r.article_id for r in rows]),
            "source_id": (pa.string(), [r.source_id for r in rows]),
            "url": (pa.string(), [r.url for r in rows]),
            "page_url": (pa.string(), [r.page_url or r.url for r in rows]),
            "title": (pa.string(), [r.title for r in rows]),
            "author": (pa.string(), [r.author for r in rows]),
            "account": (pa.string(), [r.account for r in rows]),
            "published_at": (TS, [r.published_at for r in rows]),
            "content_hash": (pa.string(), [r.content_hash or None for r in rows]),
            "content_key": (pa.uint64(), [content_key(r.content_hash) for r in rows]),
            "simhash": (pa.uint64(), [r.simhash & UINT64_MASK for r in rows]),
            "flags": (pa.string(), [r.flags for r in rows]),
            "extractor_version": (pa.string(), [r.extractor_version for r in rows]),
            "rules_version": (pa.string(), [r.rules_version for r in rows]),
            "extracted_at": (TS, [r.extracted_at for r in rows]),
            "row_hash": (pa.string(), row_hashes(rows, texts)),
            "html_hash": (pa.string(), [r.html_hash for r in rows]),
        }
    )
    # Encoded once: the bytes are both hashed and handed to Arrow (a view, no second UTF-8 pass).
    return table.append_column("text", pa.array(texts, pa.binary()).view(pa.string()))


def _stage(con: duckdb.DuckDBPyConnection) -> None:
    """`_stage`: the batch's keys (never the text) with their stored past; then the stored versions of
    changed articles go.

    A changed article is deleted and inserted again from the batch by `_write_articles`: measured
    50-100x faster than an UPDATE that sets the text, which reads and rewrites the stored zstd text
    (about 4 ms a row on a 200k-row table). An unchanged one is updated in place, its text untouched
    (measured: 2,500 rows in about 4 ms, COMMIT 0.5 ms; their insert wrote all their text again). Stored
    rows are found by `article_key` and only numeric columns are read (and dup_of, mostly NULL):
    batches.py says why.
    """
    # A plain LEFT JOIN on the key (the batch's ids are unique): planned in about half the time of a CTE
    # and a DISTINCT subquery, which at 500-row batches is most of this statement's cost.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _stage AS
        SELECT b.idx, b.article_id, b.article_key, b.row_key, b.content_key, b.content_hash, b.simhash,
               s.rowid IS NOT NULL AS existed,
               (s.rowid IS NULL OR s.row_hash IS DISTINCT FROM b.row_key) AS changed,
               s.rowid AS stored_rid,
               coalesce(s.seen_seq, (SELECT coalesce(max(seen_seq), 0) FROM articles) + b.idx + 1) AS seen_seq,
               coalesce(s.first_seen, b.extracted_at) AS first_seen,
               s.updated_at AS stored_updated_at, s.dup_of AS stored_dup_of
        FROM (SELECT idx, article_id, content_key, content_hash, simhash, extracted_at,
                     {key_sql("article_id")} AS article_key, {hex_key_sql("row_hash")} AS row_key
              FROM _article_batch) b
        LEFT JOIN articles s USING (article_key)
        """
    )
    con.execute("DELETE FROM articles WHERE rowid IN (SELECT stored_rid FROM _stage WHERE existed AND changed)")


_BATCH_COLUMNS = (
    "article_id",
    "source_id",
    "url",
    "page_url",
    "title",
    "author",
    "account",
    "published_at",
    "text",
    "content_hash",
    "content_key",
    "simhash",
    "flags",
    "extractor_version",
    "rules_version",
    "extracted_at",
)


def _write_articles(
    con: duckdb.DuckDBPyConnection, roots: dict[str, str | None], moved: list[str], unchanged: bool
) -> None:
    """Insert the new and changed articles (`_stage` took their stored versions out) with their new dup_of
    and updated_at; update the unchanged ones in place: only the columns outside `row_hash` (the batch's
    versions and extracted_at), so their text is not written again. `moved`: stored originals that became
    copies; their own copies follow them to the new root."""
    con.register(
        "_roots",
        arrow_table(
            {
                "article_id": (pa.string(), list(roots)),
                "dup_of": (pa.string(), list(roots.values())),
            }
        ),
    )
    try:
        con.execute(
            f"""
            INSERT INTO articles ({", ".join(_BATCH_COLUMNS)}, row_hash, article_key, first_seen, seen_seq, dup_of,
                                  updated_at)
            SELECT {", ".join("b." + c for c in _BATCH_COLUMNS)}, s.row_key, s.article_key, s.first_seen, s.seen_seq,
                   CASE WHEN s.changed THEN r.dup_of ELSE s.stored_dup_of END,
                   CASE WHEN NOT s.existed THEN s.first_seen
                        WHEN s.changed THEN greatest(b.extracted_at, s.first_seen)
                        ELSE s.stored_updated_at END
            FROM _article_batch b JOIN _stage s USING (idx) LEFT JOIN _roots r ON r.article_id = s.article_id
            WHERE s.changed
            """
        )
        if unchanged:
            con.execute(
                """
                UPDATE articles SET extractor_version = b.extractor_version, rules_version = b.rules_version,
                                    extracted_at = b.extracted_at
                FROM _stage s JOIN _article_batch b USING (idx)
                WHERE articles.rowid = s.stored_rid AND NOT s.changed
                """
            )
        if moved:
            con.execute(
                """
                UPDATE articles SET dup_of = r.dup_of
                FROM (SELECT article_id, dup_of FROM _roots WHERE list_contains($moved, article_id)) r
                WHERE articles.dup_of = r.article_id
                """,
                {"moved": moved},
            )
    finally:
        forget(con, "_roots")


# From this many rows a batch's stored extraction rows are updated in place, under it deleted and inserted
# again (`_write_extractions` says why); the crawl's windows are under it.
EXTRACTIONS_IN_PLACE_ROWS = 2048


def _write_extractions(
    con: duckdb.DuckDBPyConnection,
    batch: pa.Table | None,
    articles: Sequence[ArticleRow],
    rejections: Sequence[Rejection],
) -> None:
    """One row per page: its latest outcome, versions and the HTML hash it was made from.

    Article outcomes are columns of the Arrow `batch` (no second pass over the rows), registered with the
    rejections as one Arrow table (not a temp table: at 500-row batches each statement is a fixed few ms).
    How the stored rows for the batch's pages are replaced depends on the batch's size (BENCHMARKS.md,
    the warehouse section): under `EXTRACTIONS_IN_PLACE_ROWS` they are deleted and the whole batch
    inserted; from it up, they are updated in place (`url`, the primary key, is never set) and the other
    pages inserted. Updating DuckDB's VARCHAR columns costs more the larger the stored table: with 250 of 500
    rows stored among 400,000, the statements and COMMIT took 52 ms updating, 28 deleting and inserting; a
    whole `record_extractions` 148 -> 123 ms (content changed) and 126 -> 119 (versions only). Among 50,000
    it is 5-8 ms slower (79 -> 84, 77 -> 84), even at 1,000 rows. At 5,000 rows the delete and insert lose at
    COMMIT (the primary-key index): 76 ms against 42.
    """
    if batch is None and not rejections:
        return
    unpinned = any(r.html_hash is None for r in articles) or any(r.html_hash is None for r in rejections)
    con.register("_outcomes", outcome_table(batch, articles, rejections))
    try:
        keyed = f"(SELECT *, {key_sql('url')} AS url_key FROM _outcomes)"
        # Rows that do not say which HTML they came from were made from the page as stored now.
        source = f"(SELECT * FROM {keyed})"
        if unpinned:
            page_hash = f"coalesce(o.html_hash, {hex_of_key_sql('p.html_key')})"
            pages = stored_rows_sql("pages", "url_key", keyed, "html_key")
            source = (
                f"(SELECT o.* REPLACE ({page_hash} AS html_hash) FROM {keyed} o LEFT JOIN {pages} p USING (url_key))"
            )
        insert = f"""
            INSERT INTO extractions (url, source_id, outcome, article_id, reason, detail, extractor_version,
                                     rules_version, html_hash, extracted_at, url_key)
            SELECT o.url, o.source_id, o.outcome, o.article_id, o.reason, o.detail, o.extractor_version,
                   o.rules_version, o.html_hash, o.extracted_at, o.url_key
            FROM {source} o"""
        if len(articles) + len(rejections) < EXTRACTIONS_IN_PLACE_ROWS:
            con.execute(f"DELETE FROM extractions WHERE url_key IN (SELECT url_key FROM {keyed})")
            con.execute(insert)
            return
        con.execute(
            f"""
            UPDATE extractions SET source_id = o.source_id, outcome = o.outcome, article_id = o.article_id,
                                   reason = o.reason, detail = o.detail, extractor_version = o.extractor_version,
                                   rules_version = o.rules_version, html_hash = o.html_hash,
                                   extracted_at = o.extracted_at
            FROM {source} o WHERE extractions.url_key = o.url_key
            """
        )
        con.execute(f"{insert} ANTI JOIN extractions e USING (url_key)")
    finally:
        forget(con, "_outcomes")


def record_extractions(
    con: duckdb.DuckDBPyConnection, articles: Sequence[ArticleRow], rejections: Sequence[Rejection]
) -> ExtractionCounts:
    """Upsert one batch of articles and rejections (call inside a transaction)."""
    with gc_paused():
        return _record(con, articles, rejections)


def _record(
    con: duckdb.DuckDBPyConnection, articles: Sequence[ArticleRow], rejections: Sequence[Rejection]
) -> ExtractionCounts:
    articles = last_per_key(articles, lambda a: a.article_id)
    rejections = last_per_key(rejections, lambda r: r.url)
    if not articles:
        _write_extractions(con, None, (), rejections)
        return ExtractionCounts(rejected=len(rejections))
    batch = _article_batch(articles)
    con.register("_article_batch", batch)
    try:
        _stage(con)
        roots, targets = fold_duplicates(con)
        moved = [t.article_id for t in targets if t.existed and roots[t.article_id] is not None]
        _write_articles(con, roots, moved, len(targets) < len(articles))
        _write_extractions(con, batch, articles, rejections)
    finally:
        forget(con, "_article_batch")
    new = sum(1 for t in targets if not t.existed)
    return ExtractionCounts(
        new=new,
        updated=len(targets) - new,
        unchanged=len(articles) - len(targets),
        duplicates=sum(1 for root in roots.values() if root is not None),
        rejected=len(rejections),
    )


def pages_to_extract(
    con: duckdb.DuckDBPyConnection,
    *,
    source_id: str | None,
    extractor_version: str,
    rules_versions: Mapping[str, str],
    only_stale: bool,
    limit: int,
    after_url: str | None,
) -> list[PageRow]:
    """Article pages never extracted, or last extracted from other HTML or by other versions.

    A source missing from `rules_versions` is compared on the extractor version and HTML only.
    """
    # Pick the rows first from narrow columns, then read the HTML of just those by rowid (a join or an IN on
    # url would read every page's HTML: the HTML is most of the file).
    rows = con.execute(
        """
        WITH rv AS (SELECT unnest($rv_sources::VARCHAR[]) AS source_id, unnest($rv_versions::VARCHAR[]) AS rules_version),
        picked AS (
            SELECT p.rid
            FROM (SELECT rowid AS rid, url, source_id, kind, html_hash FROM pages) p
            LEFT JOIN extractions e USING (url)
            LEFT JOIN rv ON rv.source_id = p.source_id
            WHERE p.kind = 'article'
              AND ($source IS NULL OR p.source_id = $source)
              AND ($after IS NULL OR p.url > $after)
              AND (NOT $only_stale
                   OR e.url IS NULL
                   OR e.extractor_version IS DISTINCT FROM $extractor_version
                   OR (rv.rules_version IS NOT NULL AND e.rules_version IS DISTINCT FROM rv.rules_version)
                   OR e.html_hash IS DISTINCT FROM p.html_hash)
            ORDER BY p.url
            LIMIT $limit
        )
        SELECT url, source_id, html, fetched_at, html_hash, encoding, final_url, kind
        FROM pages WHERE rowid IN (SELECT rid FROM picked)
        ORDER BY url
        """,
        {
            "rv_sources": list(rules_versions.keys()),
            "rv_versions": list(rules_versions.values()),
            "source": source_id,
            "after": after_url,
            "only_stale": only_stale,
            "extractor_version": extractor_version,
            "limit": limit,
        },
    ).fetchall()
    return [
        PageRow(url=u, source_id=s, html=h, fetched_at=f, html_hash=hh, encoding=enc, final_url=fu, kind=k)
        for u, s, h, f, hh, enc, fu, k in rows
    ]
