"""Articles and extraction outcomes: idempotent upserts, duplicate folding, staleness.

Duplicate rule: an article that is new or whose content changed gets `dup_of` = the root of the
earliest-seen other article (by `seen_seq`, batch order inside a batch) with the same `content_hash`;
failing that, of the nearest earlier distinct article whose 64-bit simhash is within Hamming distance
`NEAR_DISTANCE`. Roots are distinct articles (`dup_of` NULL), so `dup_of` never chains. Near
candidates are found with four 16-bit band joins: two hashes within distance 3 share a band exactly.
Unchanged articles keep their `dup_of`.

Every page processed leaves one row in `extractions` (article or rejection, with the versions and
the HTML hash used), which is what `pages_to_extract` compares against.
"""
from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence

import duckdb
import pyarrow as pa

from .batches import TS, UINT64_MASK, arrow_table, last_per_key, utc
from .rows import ArticleRow, ExtractionCounts, PageRow, Rejection

NEAR_DISTANCE = 3
_BANDS = (0, 16, 32, 48)
def _row_hash(row: ArticleRow, text_utf8: bytes) -> str:
    """Hash of everything that makes an article "changed" (versions and times excluded).

    The text enters as length and CRC-32 of its UTF-8 bytes (already made for Arrow) next to the
    extractor's sha256 `content_hash`: a change that slips past both is not a practical risk.
    """
    published = utc(row.published_at)
    meta = (row.source_id, row.url, row.page_url or row.url, row.title, row.author, row.account,
            published.isoformat() if published else None, row.content_hash or None, row.simhash & UINT64_MASK,
            row.flags, len(text_utf8), zlib.crc32(text_utf8))
    return hashlib.blake2b(repr(meta).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def content_key(content_hash: str | None) -> int | None:
    """64-bit integer form of a content hash (its first 16 hex digits), joined far faster than the string."""
    if not content_hash:
        return None
    if _HEX16.match(content_hash):
        return int(content_hash[:16], 16)
    return int.from_bytes(hashlib.blake2b(content_hash.encode(), digest_size=8).digest(), "big")


def _article_batch(rows: Sequence[ArticleRow]) -> pa.Table:
    texts = [r.text.encode("utf-8", "surrogatepass") for r in rows]
    table = arrow_table({
        "idx": (pa.int64(), range(len(rows))),
        "article_id": (pa.string(), [r.article_id for r in rows]),
        "source_id": (pa.string(), [r.source_id for r in rows]),
        "url": (pa.string(), [r.url for r in rows]),
        "page_url": (pa.string(), [r.page_url or r.url for r in rows]),
        "title": (pa.string(), [r.title for r in rows]),
        "author": (pa.string(), [r.author for r in rows]),
        "account": (pa.string(), [r.account for r in rows]),
        "published_at": (TS, [utc(r.published_at) for r in rows]),
        "content_hash": (pa.string(), [r.content_hash or None for r in rows]),
        "content_key": (pa.uint64(), [content_key(r.content_hash) for r in rows]),
        "simhash": (pa.uint64(), [r.simhash & UINT64_MASK for r in rows]),
        "flags": (pa.string(), [r.flags for r in rows]),
        "extractor_version": (pa.string(), [r.extractor_version for r in rows]),
        "rules_version": (pa.string(), [r.rules_version for r in rows]),
        "extracted_at": (TS, [utc(r.extracted_at) for r in rows]),
        "row_hash": (pa.string(), [_row_hash(r, t) for r, t in zip(rows, texts)]),
        "html_hash": (pa.string(), [r.html_hash for r in rows]),
    })
    # Encoded once: the bytes are both hashed and handed to Arrow (a view, no second UTF-8 pass).
    return table.append_column("text", pa.array(texts, pa.binary()).view(pa.string()))


def _stage(con: duckdb.DuckDBPyConnection) -> None:
    """`_stage`: the batch's keys joined to what is stored (never the text), its first-seen order, a changed flag."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _stage AS
        SELECT b.idx, b.article_id, b.content_hash, b.content_key, b.simhash,
               a.article_id IS NOT NULL AS existed,
               (a.article_id IS NULL OR a.row_hash IS DISTINCT FROM b.row_hash) AS changed,
               coalesce(a.seen_seq, (SELECT coalesce(max(seen_seq), 0) FROM articles) + b.idx + 1) AS seen_seq,
               coalesce(a.first_seen, b.extracted_at) AS first_seen,
               a.dup_of AS old_dup_of
        FROM (SELECT idx, article_id, content_hash, content_key, simhash, row_hash, extracted_at FROM _article_batch) b
        LEFT JOIN (SELECT article_id, row_hash, seen_seq, first_seen, dup_of FROM articles) a USING (article_id)
        """
    )


def _candidates(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """For each new or changed article, in first-seen order: (article_id, candidate, candidate's dup_of).

    The candidate is the earliest earlier article with the same content hash, else the nearest earlier
    distinct article within NEAR_DISTANCE bits. Phase one matches on integers only (content_key,
    16-bit simhash bands, seen_seq) over the whole table; phase two reads ids and strings for the few
    pairs found (by rowid), checks the full content hash, and drops the stored versions of articles this
    batch changes.
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _targets AS "
        "SELECT article_id, content_key, content_hash, simhash, seen_seq, existed FROM _stage WHERE changed"
    )
    bands = " UNION ALL ".join(
        f"""SELECT t.article_id, t.seen_seq AS t_seq, p.seen_seq AS c_seq, {{rid}} AS c_rid,
                   bit_count(xor(t.simhash, p.simhash)) AS dist
            FROM _targets t JOIN {{pool}} p ON (t.simhash >> {shift}) & 65535 = (p.simhash >> {shift}) & 65535
            WHERE p.seen_seq < t.seen_seq AND bit_count(xor(t.simhash, p.simhash)) <= {NEAR_DISTANCE}
              AND t.simhash <> 0 AND p.simhash <> 0"""
        for shift in _BANDS
    )
    exact = """SELECT t.article_id, t.seen_seq AS t_seq, p.seen_seq AS c_seq, {rid} AS c_rid, -1 AS dist
               FROM _targets t JOIN {pool} p ON p.content_key = t.content_key WHERE p.seen_seq < t.seen_seq"""
    pairs = " UNION ALL ".join(q.format(pool=pool, rid=rid) for q in (exact, bands)
                               for pool, rid in (("articles", "p.rowid"), ("_targets", "NULL::BIGINT")))
    return con.execute(
        f"""
        WITH pairs AS ({pairs}),
        pool AS (  -- who each candidate seq is: stored articles (not the versions being replaced), then the batch
            SELECT a.seen_seq, a.article_id, a.content_hash, a.dup_of, false AS in_batch
            FROM articles a
            WHERE a.rowid IN (SELECT c_rid FROM pairs WHERE c_rid IS NOT NULL)   -- fetched by rowid: few rows read
              AND a.article_id NOT IN (SELECT article_id FROM _targets WHERE existed)
            UNION ALL
            SELECT seen_seq, article_id, content_hash, NULL, true FROM _targets
        ),
        checked AS (
            SELECT pairs.article_id, pairs.t_seq, pairs.dist, pool.seen_seq, pool.article_id AS cand, pool.dup_of
            FROM pairs JOIN pool ON pool.seen_seq = pairs.c_seq
            JOIN _targets t ON t.article_id = pairs.article_id
            WHERE (pairs.dist = -1 AND pool.content_hash = t.content_hash)
               OR (pairs.dist >= 0 AND (pool.in_batch OR pool.dup_of IS NULL))
        ),
        best AS (
            SELECT article_id, arg_min(cand, (dist, seen_seq)) AS cand, arg_min(dup_of, (dist, seen_seq)) AS cand_dup
            FROM checked GROUP BY article_id
        )
        SELECT t.article_id, best.cand, best.cand_dup
        FROM _targets t LEFT JOIN best USING (article_id)
        ORDER BY t.seen_seq
        """
    ).fetchall()


def _resolve_roots(candidates: list[tuple]) -> dict[str, str | None]:
    """dup_of per target, in first-seen order, so a twin inside the batch is resolved before its copies."""
    resolved: dict[str, str | None] = {}
    for article_id, cand, cand_dup in candidates:
        if cand is None:
            resolved[article_id] = None
        elif cand in resolved:
            resolved[article_id] = resolved[cand] or cand
        else:
            resolved[article_id] = cand_dup or cand
    return resolved


_ARTICLE_COLUMNS = ("source_id", "url", "page_url", "title", "author", "account", "published_at", "text",
                    "content_hash", "content_key", "simhash", "flags", "extractor_version", "rules_version", "extracted_at", "row_hash")


def _write_articles(con: duckdb.DuckDBPyConnection, roots: dict[str, str | None]) -> None:
    """Insert the new articles, update the changed ones, refresh versions on the unchanged ones."""
    con.register("_roots", arrow_table({
        "article_id": (pa.string(), list(roots)),
        "dup_of": (pa.string(), list(roots.values())),
    }))
    columns = ", ".join(_ARTICLE_COLUMNS)
    try:
        con.execute(
            f"""
            INSERT INTO articles (article_id, {columns}, dup_of, first_seen, updated_at, seen_seq)
            SELECT b.article_id, {", ".join("b." + c for c in _ARTICLE_COLUMNS)}, r.dup_of,
                   s.first_seen, s.first_seen, s.seen_seq
            FROM _article_batch b JOIN _stage s USING (article_id) LEFT JOIN _roots r USING (article_id)
            WHERE NOT s.existed
            """
        )
        if not con.execute("SELECT count(*) FROM _stage WHERE existed").fetchall()[0][0]:
            return
        con.execute(
            f"""
            UPDATE articles SET
                {", ".join(f"{c} = CASE WHEN x.changed THEN x.{c} ELSE articles.{c} END"
                           for c in _ARTICLE_COLUMNS
                           if c not in ("extractor_version", "rules_version", "extracted_at"))},
                extractor_version = x.extractor_version, rules_version = x.rules_version,
                extracted_at = x.extracted_at,
                dup_of = CASE WHEN x.changed THEN x.new_dup_of ELSE articles.dup_of END,
                updated_at = CASE WHEN x.changed THEN greatest(x.extracted_at, articles.first_seen)
                                  ELSE articles.updated_at END
            FROM (SELECT b.*, s.changed, r.dup_of AS new_dup_of
                  FROM _article_batch b JOIN _stage s USING (article_id) LEFT JOIN _roots r USING (article_id)
                  WHERE s.existed) x
            WHERE articles.article_id = x.article_id
              AND (x.changed OR articles.extractor_version IS DISTINCT FROM x.extractor_version
                   OR articles.rules_version IS DISTINCT FROM x.rules_version
                   OR articles.extracted_at IS DISTINCT FROM x.extracted_at)
            """
        )
        # An updated article that became a copy takes its own copies along to its root.
        con.execute(
            """
            UPDATE articles SET dup_of = r.dup_of
            FROM (SELECT a.article_id, a.dup_of FROM articles a
                  JOIN _stage s ON s.article_id = a.article_id AND s.existed AND s.changed
                  WHERE a.dup_of IS NOT NULL) r
            WHERE articles.dup_of = r.article_id
            """
        )
    finally:
        con.unregister("_roots")


def _write_extractions(con: duckdb.DuckDBPyConnection, with_articles: bool, rejections: Sequence[Rejection]) -> None:
    """One row per page: its latest outcome, versions and the HTML hash it was made from.

    Article outcomes come straight from the registered `_article_batch` (no second Python pass);
    a page both extracted and rejected in one batch keeps the rejection (given last).
    """
    parts = []
    if with_articles:
        parts.append("""SELECT page_url AS url, source_id, 'article' AS outcome, article_id, NULL AS reason,
                               NULL AS detail, extractor_version, rules_version, html_hash, extracted_at, idx AS ord
                        FROM _article_batch""")
    if rejections:
        con.register("_rejections", arrow_table({
            "idx": (pa.int64(), range(len(rejections))),
            "url": (pa.string(), [r.url for r in rejections]),
            "source_id": (pa.string(), [r.source_id for r in rejections]),
            "reason": (pa.string(), [r.reason for r in rejections]),
            "detail": (pa.string(), [r.detail for r in rejections]),
            "extractor_version": (pa.string(), [r.extractor_version for r in rejections]),
            "rules_version": (pa.string(), [r.rules_version for r in rejections]),
            "html_hash": (pa.string(), [r.html_hash for r in rejections]),
            "extracted_at": (TS, [utc(r.extracted_at) for r in rejections]),
        }))
        parts.append("""SELECT url, source_id, 'rejected' AS outcome, NULL AS article_id, reason, detail,
                               extractor_version, rules_version, html_hash, extracted_at, idx + 1000000000000 AS ord
                        FROM _rejections""")
    if not parts:
        return
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _outcomes AS
        SELECT * EXCLUDE (ord) FROM ({" UNION ALL ".join(parts)})
        QUALIFY row_number() OVER (PARTITION BY url ORDER BY ord DESC) = 1
        """
    )
    # Split into UPDATE of known pages and INSERT of new ones: measured faster than ON CONFLICT DO UPDATE
    # when most rows conflict (a re-extraction), and equal when none do.
    try:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _outcome_stage AS
            SELECT o.*, coalesce(o.html_hash, p.html_hash) AS page_hash, e.url IS NOT NULL AS known
            FROM _outcomes o
            LEFT JOIN (SELECT url, html_hash FROM pages) p USING (url)
            LEFT JOIN (SELECT url FROM extractions) e USING (url)
            """
        )
        con.execute(
            """
            UPDATE extractions SET
                source_id = o.source_id, outcome = o.outcome, article_id = o.article_id, reason = o.reason,
                detail = o.detail, extractor_version = o.extractor_version, rules_version = o.rules_version,
                html_hash = o.page_hash, extracted_at = o.extracted_at
            FROM _outcome_stage o
            WHERE extractions.url = o.url AND o.known
              AND (extractions.outcome, extractions.article_id, extractions.reason, extractions.detail,
                   extractions.extractor_version, extractions.rules_version, extractions.html_hash,
                   extractions.extracted_at, extractions.source_id)
                  IS DISTINCT FROM
                  (o.outcome, o.article_id, o.reason, o.detail, o.extractor_version, o.rules_version, o.page_hash,
                   o.extracted_at, o.source_id)
            """
        )
        con.execute(
            """
            INSERT INTO extractions (url, source_id, outcome, article_id, reason, detail, extractor_version,
                                     rules_version, html_hash, extracted_at)
            SELECT url, source_id, outcome, article_id, reason, detail, extractor_version, rules_version,
                   page_hash, extracted_at
            FROM _outcome_stage WHERE NOT known
            """
        )
        con.execute("DROP TABLE _outcome_stage")
        con.execute("DROP VIEW _outcomes")
    finally:
        if rejections:
            con.unregister("_rejections")


def record_extractions(con: duckdb.DuckDBPyConnection, articles: Sequence[ArticleRow],
                       rejections: Sequence[Rejection]) -> ExtractionCounts:
    """Upsert one batch of articles and rejections (call inside a transaction)."""
    articles = last_per_key(articles, lambda a: a.article_id)
    rejections = last_per_key(rejections, lambda r: r.url)
    counts = {"new": 0, "updated": 0, "unchanged": 0, "duplicates": 0}
    if not articles:
        _write_extractions(con, False, rejections)
    else:
        con.register("_article_batch", _article_batch(articles))
        try:
            _stage(con)
            roots = _resolve_roots(_candidates(con))
            _write_articles(con, roots)
            new, updated, unchanged = con.execute(
                """SELECT count(*) FILTER (WHERE NOT existed), count(*) FILTER (WHERE existed AND changed),
                          count(*) FILTER (WHERE existed AND NOT changed) FROM _stage"""
            ).fetchall()[0]
            counts.update(new=new, updated=updated, unchanged=unchanged,
                          duplicates=sum(1 for root in roots.values() if root is not None))
            con.execute("DROP TABLE _stage")
            con.execute("DROP TABLE _targets")
            _write_extractions(con, True, rejections)
        finally:
            con.unregister("_article_batch")
    return ExtractionCounts(rejected=len(rejections), **counts)


def pages_to_extract(con: duckdb.DuckDBPyConnection, *, source_id: str | None, extractor_version: str,
                     rules_versions: Mapping[str, str], only_stale: bool, limit: int,
                     after_url: str | None) -> list[PageRow]:
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
        {"rv_sources": list(rules_versions.keys()), "rv_versions": list(rules_versions.values()),
         "source": source_id, "after": after_url, "only_stale": only_stale,
         "extractor_version": extractor_version, "limit": limit},
    ).fetchall()
    return [PageRow(url=u, source_id=s, html=h, fetched_at=f, html_hash=hh, encoding=enc, final_url=fu, kind=k)
            for u, s, h, f, hh, enc, fu, k in rows]
