"""Views, stats and export on a small fixture warehouse, read back with plain duckdb and pyarrow."""
from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import duckdb
import pyarrow.parquet as pq
import pytest

from warehouse import SourceRow, Warehouse

from .test_warehouse_support import T0, article, fetch, plain_connect

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def fixture_wh(tmp_path_factory) -> Warehouse:
    wh = Warehouse(tmp_path_factory.mktemp("views") / "w.duckdb")
    wh.upsert_sources([SourceRow("demo", "h", "{}"), SourceRow("other", "h", "{}"), SourceRow("idle", "h", "{}")])
    run = wh.start_run("crawl", "demo", {})
    wh.record_fetches([fetch(f"https://demo.example/a/{n}", run_id=run) for n in range(1, 5)]
                      + [fetch("https://demo.example/a/8", status=None, error="timeout", run_id=run),
                         fetch("https://demo.example/a/9", status=503, error="http_5xx", run_id=run),
                         fetch("https://demo.example/a/10", status=None, error="timeout", run_id=run)],
                      revisit_after=DAY)
    wh.finish_run(run, "completed", {"fetched": 7})
    wh.finish_run(wh.start_run("crawl", "other", {}), "failed", {}, error="boom")
    wh.record_fetches([fetch("https://other.example/a/1", source="other", fetched_at=T0 + DAY)], revisit_after=DAY)
    same = "转载的同一篇文章。" * 20
    wh.record_extractions([
        article(1, text=same, published_at=T0 - 40 * DAY),
        article(2, text=same),
        article(3, text=same),
        article(4),
        article(5, source="other", published_at=T0),
    ], [])
    # Next day: article 4 is edited.
    wh.record_extractions([article(4, title="改过的标题", extracted_at=T0 + DAY)], [])
    return wh


def test_v_articles_folds_duplicates(fixture_wh) -> None:
    rows = fixture_wh.query("SELECT article_id, copies, len(copy_urls) FROM v_articles ORDER BY article_id").rows
    assert rows == [("a0000001", 3, 2), ("a0000004", 1, 0), ("a0000005", 1, 0)]


def test_v_daily_counts_per_source_and_day(fixture_wh) -> None:
    result = fixture_wh.query("SELECT * FROM v_daily")
    assert result.columns == ["source_id", "day", "fetched", "new", "updated", "duplicates", "failures"]
    by_key = {(r[0], r[1]): r[2:] for r in result.rows}
    assert by_key == {
        ("demo", T0.date()): (7, 4, 0, 2, 3),
        ("demo", (T0 + DAY).date()): (0, 0, 1, 0, 0),
        ("other", T0.date()): (0, 1, 0, 0, 0),
        ("other", (T0 + DAY).date()): (1, 0, 0, 0, 0),
    }


def test_v_source_health(fixture_wh) -> None:
    result = fixture_wh.query("SELECT source_id, fetches, ok, failures, success_rate, last_good_crawl IS NOT NULL, "
                              "last_run_status, failures_by_kind FROM v_source_health")
    rows = {r[0]: r[1:] for r in result.rows}
    assert rows["demo"] == (7, 4, 3, pytest.approx(4 / 7, abs=1e-4), True, "completed", {"timeout": 2, "http_5xx": 1})
    assert rows["other"] == (1, 1, 0, 1.0, False, "failed", {})
    assert rows["idle"][:3] == (0, 0, 0) and rows["idle"][3] is None


def test_stats_per_source(fixture_wh) -> None:
    result = fixture_wh.stats()
    assert result.columns == ["source_id", "articles", "distinct", "duplicates", "pages", "fetches", "failures",
                              "last_good_crawl"]
    rows = {r[0]: r[1:7] for r in result.rows}
    assert rows == {"demo": (4, 2, 2, 4, 7, 3), "other": (1, 1, 0, 1, 1, 0), "idle": (0, 0, 0, 0, 0, 0)}


def test_views_open_in_plain_duckdb(fixture_wh) -> None:
    con = plain_connect(fixture_wh.path)   # no sieve code, no UDFs, no extensions to install
    try:
        for view in ("v_articles", "v_daily", "v_source_health"):
            assert con.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0] > 0
    finally:
        con.close()


def test_export_parquet_is_partitioned_by_source_and_month(fixture_wh, tmp_path) -> None:
    files = fixture_wh.export(tmp_path / "out", "parquet")
    parts = {f.parent.relative_to(tmp_path / "out" / "articles").as_posix() for f in files}
    # article 1 was published 40 days before T0 (November); the others within days of T0 (January).
    assert parts == {"source=demo/month=2025-11", "source=demo/month=2026-01", "source=other/month=2026-01"}
    table = pq.read_table(tmp_path / "out" / "articles", partitioning="hive")
    assert table.num_rows == 5
    assert sorted(table.column("article_id").to_pylist()) == [f"a000000{n}" for n in range(1, 6)]
    con = duckdb.connect()
    n = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = true) WHERE source = 'demo'",
                    [str(tmp_path / "out" / "articles" / "**" / "*.parquet")]).fetchall()
    assert n == [(4,)]
    # Filters: one source, since a date, distinct only; a second export (overwrite) replaces the first.
    files = fixture_wh.export(tmp_path / "out", "parquet", source="demo", since=date(2026, 1, 1), overwrite=True)
    assert pq.read_table(tmp_path / "out" / "articles").num_rows == 3        # articles 2, 3 and 4
    assert all("source=demo" in str(f) for f in files)


def test_export_csv_and_jsonl(fixture_wh, tmp_path) -> None:
    [csv_path] = fixture_wh.export(tmp_path, "csv", distinct_only=True)
    with csv_path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["article_id"] for r in rows) == ["a0000001", "a0000004", "a0000005"]
    assert rows[0]["text"] and "source" not in rows[0]
    [jsonl_path] = fixture_wh.export(tmp_path, "jsonl", source="other", overwrite=True)
    lines = [json.loads(line) for line in jsonl_path.read_text(encoding="utf-8").splitlines()]
    assert [(r["article_id"], r["source_id"]) for r in lines] == [("a0000005", "other")]
    assert lines[0]["title"] == "标题 5"
    with pytest.raises(ValueError, match="unknown export format"):
        fixture_wh.export(tmp_path, "xml", overwrite=True)  # type: ignore[arg-type]
