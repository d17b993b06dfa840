"""Read-side helpers: the per-source summary and file exports (Parquet, CSV, JSON lines)."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from .errors import ExportError
from .migrations import GOOD_RUNS_SQL

ExportFormat = Literal["parquet", "csv", "jsonl"]
EXPORT_FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")

STATS_SQL = (
    """
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
), r AS (  -- a completed crawl or backfill that fetched something (migrations.GOOD_RUNS_SQL)
    SELECT source_id, max(finished_at) AS last_good_crawl FROM ("""
    + GOOD_RUNS_SQL
    + """) GROUP BY source_id
)
SELECT ids.source_id, coalesce(a.articles, 0) AS articles, coalesce(a.distinct_articles, 0) AS "distinct",
       coalesce(a.duplicates, 0) AS duplicates, coalesce(p.pages, 0) AS pages,
       coalesce(f.fetches, 0) AS fetches, coalesce(f.failures, 0) AS failures, r.last_good_crawl
FROM ids LEFT JOIN a USING (source_id) LEFT JOIN p USING (source_id) LEFT JOIN f USING (source_id)
LEFT JOIN r USING (source_id)
ORDER BY ids.source_id
"""
)

_EXPORT_COLUMNS = """
    article_id, source_id, url, title, author, account, published_at, text, content_hash, simhash,
    dup_of, flags, extractor_version, rules_version, extracted_at, first_seen, updated_at
"""


MANIFEST = ".sieve-export.json"  # in the export folder: the files sieve wrote there, so only those are ever replaced


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _prepare(out_dir: Path, overwrite: bool) -> list[Path]:
    """Check the target, and return sieve's earlier files there (to remove once the new ones are written).

    A folder with anything in it is refused unless `overwrite`; with it, the files a manifest says sieve
    wrote are replaced and everything else is left alone. Writing goes to a staging folder inside
    `out_dir` first, so a failed export leaves the earlier one in place.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        present = [p for p in out_dir.iterdir() if p.name != MANIFEST]
    except OSError as exc:
        raise ExportError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    if not out_dir.is_dir():
        raise ExportError(f"cannot export to {out_dir}: not a folder")
    if present and not overwrite:
        raise ExportError(
            f"{out_dir} is not empty ({len(present)} entries): choose an empty folder, or pass "
            f"--overwrite to replace sieve's earlier export there (other files are never touched)"
        )
    try:
        listed = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        listed = []
    root = out_dir.resolve()
    earlier = []
    for name in listed:  # only plain relative paths inside out_dir: a manifest is not trusted further
        path = (out_dir / str(name)).resolve()
        if path.is_relative_to(root) and path != root and path.is_file():
            earlier.append(path)
    return earlier


def _install(staging: Path, out_dir: Path, earlier: list[Path]) -> list[Path]:
    """Move the staged files into place over sieve's earlier ones; refuse to replace anyone else's."""
    root = out_dir.resolve()
    staged = sorted(p for p in staging.rglob("*") if p.is_file())
    targets = [root / p.relative_to(staging) for p in staged]
    ours = set(earlier)
    foreign = [t for t in targets if t.exists() and t not in ours]
    if foreign:
        raise ExportError(f"{foreign[0]} exists and was not written by sieve: not replacing it (move it away first)")
    for path in earlier:
        path.unlink(missing_ok=True)
    for src, dst in zip(staged, targets, strict=True):
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.replace(dst)
    for folder in sorted({p.parent for p in earlier}, key=lambda p: len(p.parts), reverse=True):
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()  # only if empty: earlier partitions with nothing left
            except OSError:
                break
            folder = folder.parent
    (root / MANIFEST).write_text(
        json.dumps({"files": [str(t.relative_to(root)) for t in targets]}, indent=1), encoding="utf-8"
    )
    return targets


def export_articles(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    fmt: ExportFormat,
    *,
    source: str | None,
    since: date | None,
    distinct_only: bool,
    overwrite: bool = False,
) -> list[Path]:
    """Write articles (with `dup_of`, so copies can be told apart) to `out_dir`.

    `since` filters on the article's date: published_at, or first_seen when the page gave none; the
    Parquet month partition uses the same date. Parquet goes to `out_dir/articles/source=S/month=YYYY-MM/`;
    CSV and JSON lines go to one file each. Rows come in no particular order (sorting millions of article
    texts would cost more than the export). Target rules: `_prepare`.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    earlier = _prepare(out_dir, overwrite)
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
    try:
        staging = Path(tempfile.mkdtemp(prefix=".sieve-export-", dir=out_dir))
    except OSError as exc:
        raise ExportError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    try:
        if fmt == "parquet":
            con.execute(
                f"COPY ({select}) TO {_sql_literal(str(staging / 'articles'))} "
                "(FORMAT parquet, PARTITION_BY (source, month), COMPRESSION zstd)",
                params,
            )
        else:
            target = staging / ("articles.csv" if fmt == "csv" else "articles.jsonl")
            options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT json"
            con.execute(
                f"COPY (SELECT * EXCLUDE (source, month) FROM ({select})) TO {_sql_literal(str(target))} ({options})",
                params,
            )
        return _install(staging, out_dir, earlier)
    except duckdb.IOException as exc:
        raise ExportError(f"cannot write the export under {out_dir}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
