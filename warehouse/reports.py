"""Read-side helpers: the per-source summary and file exports (Parquet, CSV, JSON lines)."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

ExportFormat = Literal["parquet", "csv", "jsonl"]
EXPORT_FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")

STATS_SQL = """
WITH ids AS (
    SELECT source_id FROM sources UNION SELECT source_id FROM articles
    UNION SELECT source_id FROM pages UNION SELECT source_id FROM fetches
), a AS (
    SELECT source_id, count(*) AS articles, count(*) FILTER (WHERE dup_of IS NULL) AS distinct_articles,
           count(*) FILTER (WHERE dup_of IS NOT NULL) AS duplicates
    FROM articles GROUP BY source_id
), p AS (SELECT source_id, count(*) AS pages FROM pages GROUP BY source_id),
f AS (
    SELECT source_id, count(*) AS fetches, count(*) FILTER (WHERE error IS NOT NULL) AS failures
    FROM fetches GROUP BY source_id
), r AS (
    SELECT source_id, max(finished_at) FILTER (WHERE status = 'completed') AS last_good_crawl
    FROM crawl_runs GROUP BY source_id
)
SELECT ids.source_id, coalesce(a.articles, 0) AS articles, coalesce(a.distinct_articles, 0) AS "distinct",
       coalesce(a.duplicates, 0) AS duplicates, coalesce(p.pages, 0) AS pages,
       coalesce(f.fetches, 0) AS fetches, coalesce(f.failures, 0) AS failures, r.last_good_crawl
FROM ids LEFT JOIN a USING (source_id) LEFT JOIN p USING (source_id) LEFT JOIN f USING (source_id)
LEFT JOIN r USING (source_id)
ORDER BY ids.source_id
"""

_EXPORT_COLUMNS = """
    article_id, source_id, url, title, author, account, published_at, text, content_hash, simhash,
    dup_of, flags, extractor_version, rules_version, extracted_at, first_seen, updated_at
"""


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_articles(con: duckdb.DuckDBPyConnection, out_dir: Path, fmt: ExportFormat, *,
                    source: str | None, since: date | None, distinct_only: bool) -> list[Path]:
    """Write articles (with `dup_of`, so copies can be told apart) to `out_dir`.

    `since` filters on the article's date: published_at, or first_seen when the page gave none; the
    Parquet month partition uses the same date. Parquet goes to `out_dir/articles/source=S/month=YYYY-MM/`,
    replacing an earlier export there; CSV and JSON lines go to one file each. Rows come in no particular
    order (sorting millions of article texts would cost more than the export).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    select = f"""
        SELECT {_EXPORT_COLUMNS},
               source_id AS source,
               strftime(coalesce(published_at, first_seen) AT TIME ZONE 'UTC', '%Y-%m') AS month
        FROM articles
        WHERE ($source IS NULL OR source_id = $source)
          AND ($since IS NULL OR coalesce(published_at, first_seen) >= CAST($since AS TIMESTAMPTZ))
          AND (NOT $distinct_only OR dup_of IS NULL)
    """
    params = {"source": source, "since": since, "distinct_only": distinct_only}
    if fmt == "parquet":
        target = out_dir / "articles"
        con.execute(
            f"COPY ({select}) TO {_sql_literal(str(target))} "
            "(FORMAT parquet, PARTITION_BY (source, month), OVERWRITE true, COMPRESSION zstd)",
            params,
        )
        return sorted(target.rglob("*.parquet"))
    target = out_dir / ("articles.csv" if fmt == "csv" else "articles.jsonl")
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT json"
    con.execute(f"COPY (SELECT * EXCLUDE (source, month) FROM ({select})) TO {_sql_literal(str(target))} ({options})",
                params)
    return [target]
