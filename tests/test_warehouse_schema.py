"""Migrations, the public surface, and read-only access rules, on real DuckDB files."""
from __future__ import annotations

import pytest

import warehouse
from warehouse import LATEST_VERSION, QueryError, SchemaTooNew, Warehouse, WarehouseError
from warehouse.migrations import MIGRATIONS

from .test_warehouse_support import TABLES, article, plain_connect


def test_public_surface_is_pinned() -> None:
    for name in ("Warehouse", "WarehouseError", "WarehouseBusy", "SchemaTooNew", "ExtractionCounts",
                 "SourceRow", "FrontierRow", "FrontierItem", "FetchRow", "PageRow", "ArticleRow", "Rejection",
                 "QueryResult"):
        assert name in warehouse.__all__
        assert hasattr(warehouse, name)
    assert issubclass(warehouse.WarehouseBusy, WarehouseError)
    assert issubclass(SchemaTooNew, WarehouseError)


def test_fresh_file_gets_every_migration_and_parent_dir(tmp_path) -> None:
    path = tmp_path / "nested" / "dir" / "sieve.duckdb"
    assert Warehouse(path).migrate() == LATEST_VERSION
    con = plain_connect(path)
    recorded = [v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]
    assert recorded == [m.version for m in MIGRATIONS]
    names = {n for (n,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert set(TABLES) | {"schema_migrations", "v_articles", "v_daily", "v_source_health"} <= names
    # Running it again is a no-op.
    assert Warehouse(path).migrate() == LATEST_VERSION


def test_older_file_is_migrated_and_keeps_its_rows(tmp_path) -> None:
    path = tmp_path / "old.duckdb"
    assert Warehouse(path).migrate(target=1) == 1
    con = plain_connect(path, read_only=False)
    con.execute(
        "INSERT INTO articles (article_id, source_id, url, text, first_seen, updated_at, seen_seq) "
        "VALUES ('a1', 'demo', 'https://x/1', 'body', now(), now(), 1)"
    )
    has_view = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'v_articles'").fetchall()
    con.close()
    assert has_view == [(0,)]

    wh = Warehouse(path)
    assert wh.migrate() == LATEST_VERSION
    assert wh.query("SELECT article_id, copies FROM v_articles").rows == [("a1", 1)]
    assert wh.schema_version() == LATEST_VERSION


def test_newer_file_is_refused_untouched(tmp_path) -> None:
    path = tmp_path / "new.duckdb"
    Warehouse(path).migrate()
    con = plain_connect(path, read_only=False)
    con.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', now())", [LATEST_VERSION + 7])
    con.close()
    with pytest.raises(SchemaTooNew, match=rf"schema version {LATEST_VERSION + 7}.*newer sieve"):
        Warehouse(path).migrate()
    with pytest.raises(SchemaTooNew):
        Warehouse(path).record_extractions([article(1)], [])
    con = plain_connect(path)
    assert con.execute("SELECT count(*) FROM articles").fetchall() == [(0,)]
    con.close()


def test_query_is_read_only_and_reports_errors(tmp_path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(WarehouseError, match="no warehouse at"):
        wh.query("SELECT 1")
    wh.migrate()
    result = wh.query("SELECT ? + 1 AS n, 'x' AS s", [41])
    assert result.columns == ["n", "s"] and result.rows == [(42, "x")]
    with pytest.raises(QueryError):
        wh.query("SELEC nonsense")
    with pytest.raises(QueryError, match="read-only"):
        wh.query("DELETE FROM articles")


def test_timestamps_are_stored_in_utc(tmp_path) -> None:
    from datetime import datetime, timedelta, timezone

    wh = Warehouse(tmp_path / "w.duckdb")
    shanghai = timezone(timedelta(hours=8))
    row = article(1, published_at=datetime(2026, 1, 5, 10, 20, tzinfo=shanghai))
    wh.record_extractions([row], [])
    con = plain_connect(tmp_path / "w.duckdb")
    con.execute("SET TimeZone = 'UTC'")
    published = con.execute("SELECT strftime(published_at, '%Y-%m-%d %H:%M') FROM articles").fetchall()
    con.close()
    assert published == [("2026-01-05 02:20",)]
