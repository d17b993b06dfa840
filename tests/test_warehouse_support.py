"""Row factories and a table dump shared by the warehouse tests (and their child processes)."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from warehouse import ArticleRow, FetchRow, FrontierRow, Rejection
from warehouse.lease import release_all

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
TABLES = ("sources", "crawl_runs", "frontier", "fetches", "pages", "articles", "extractions")


def content_hash(text: str) -> str:
    return hashlib.sha256("".join(text.split()).encode()).hexdigest()


def article(n: int, *, source: str = "demo", text: str | None = None, simhash: int | None = None,
            extracted_at: datetime = T0, extractor_version: str = "x1", rules_version: str = "r1",
            title: str | None = None, published_at: datetime | None = None, flags: str = "") -> ArticleRow:
    body = text if text is not None else f"第{n}篇文章的正文。" * 20
    return ArticleRow(
        article_id=f"a{n:07d}", source_id=source, url=f"https://{source}.example/a/{n}.html",
        title=title if title is not None else f"标题 {n}", author="作者", account="公众号",
        published_at=published_at if published_at is not None else T0 - timedelta(days=n % 40),
        text=body, content_hash=content_hash(body),
        simhash=simhash if simhash is not None else int(hashlib.sha256(body.encode()).hexdigest()[:16], 16),
        flags=flags, extractor_version=extractor_version, rules_version=rules_version, extracted_at=extracted_at,
    )


def rejection(url: str, *, source: str = "demo", extractor_version: str = "x1", rules_version: str = "r1",
              extracted_at: datetime = T0, reason: str = "too_short") -> Rejection:
    return Rejection(url=url, source_id=source, reason=reason, extractor_version=extractor_version,
                     rules_version=rules_version, extracted_at=extracted_at)


def fetch(url: str, *, source: str = "demo", run_id: str | None = "run-1", kind: str = "article",
          status: int | None = 200, error: str | None = None, html: str | None = "<html>page</html>",
          fetched_at: datetime = T0, etag: str | None = None, last_modified: str | None = None) -> FetchRow:
    failed = error is not None or status == 304
    return FetchRow(
        run_id=run_id, source_id=source, url=url, kind=kind, final_url=url, status=status, error=error,
        detail="" if error is None else f"{error} detail", content_type="text/html; charset=utf-8",
        nbytes=0 if failed else len(html or ""), elapsed_ms=12, encoding=None if failed else "utf-8",
        replaced=False, attempts=1, etag=etag, last_modified=last_modified, fetched_at=fetched_at,
        html=None if failed else html,
    )


def frontier_row(url: str, *, source: str = "demo", kind: str = "article", parent: str | None = None) -> FrontierRow:
    return FrontierRow(url=url, source_id=source, kind=kind, discovered_from=parent)


def plain_connect(path: Path, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Plain duckdb, no sieve code: first make this process's writer let go of the file (it keeps it open
    between batches; another process would ask it to, here in-process we release it directly)."""
    release_all()
    return duckdb.connect(str(path), read_only=read_only)


def dump(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, sorted, read with plain duckdb (no sieve code)."""
    con = plain_connect(path)
    try:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    finally:
        con.close()
