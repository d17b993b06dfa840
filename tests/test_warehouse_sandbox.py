"""User SQL (`Warehouse.query`, `sieve sql`) reads the warehouse and nothing else, and writes nothing.

Every attack here worked on the plain read-only connection sieve used before (issue 13); each is run
against a real file and must be a QueryError with the file system and the warehouse unchanged.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from warehouse import QueryError, SourceRow, Warehouse, WarehouseMissing

from .test_warehouse_support import T0, article, fetch, plain_connect

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse(tmp_path / "w.duckdb")
    w.upsert_sources([SourceRow("demo", "h", "{}")])
    w.record_fetches([fetch(f"https://demo.example/a/{n}", html=f"<p>{n}</p>") for n in range(1, 4)],
                     revisit_after=T0 - T0.replace(day=4))
    w.record_extractions([article(1), article(2, text=article(1).text), article(3)], [])
    return w


def _articles(path: Path) -> int:
    con = plain_connect(path)
    try:
        return con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    finally:
        con.close()


def test_file_reads_and_writes_are_refused(wh, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    out = tmp_path / "dump.csv"
    attacks = [
        f"COPY (SELECT * FROM pages) TO '{out}'",                       # a dump of every page anywhere
        f"SELECT * FROM read_text('{secret}')",
        "SELECT * FROM read_text('/etc/passwd')",
        f"SELECT * FROM read_csv('{tmp_path / 'data.csv'}')",
        f"SELECT * FROM '{tmp_path / 'data.csv'}'",                    # a file named as a table
        f"SELECT * FROM glob('{tmp_path}/*')",
        "SELECT * FROM glob('/*')",
        f"SELECT * FROM read_parquet('{tmp_path}/*.parquet')",
    ]
    for sql in attacks:
        with pytest.raises(QueryError):
            wh.query(sql)
    assert not out.exists()


def test_statements_other_than_one_select_are_refused(wh, tmp_path) -> None:
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    link = tmp_path / "link.duckdb"
    os.link(wh.path, link)                                             # the warehouse itself, by another name
    attacks = {
        "SET threads = 1": "SET",
        "RESET threads": "SET",
        "SET enable_external_access = true": "SET",
        "PRAGMA version": "PRAGMA",
        "CALL pragma_version()": "CALL",
        "INSTALL httpfs": "LOAD",
        "LOAD json": "LOAD",
        f"ATTACH '{other}' AS o (READ_WRITE)": "ATTACH",
        f"ATTACH '{link}' AS l (READ_WRITE)": "ATTACH",
        "DETACH o": "DETACH",
        f"EXPORT DATABASE '{tmp_path / 'exp'}'": "EXPORT",
        "DELETE FROM articles": "DELETE",
        "UPDATE articles SET title = 'x'": "UPDATE",
        "CREATE TEMP TABLE x AS SELECT 1": "CREATE",
        "CHECKPOINT": "CALL",
        "EXPLAIN ANALYZE SELECT 1": "EXPLAIN",
    }
    for sql, kind in attacks.items():
        with pytest.raises(QueryError, match=rf"refused a {kind} statement"):
            wh.query(sql)
    chains = [
        "SELECT 1; SELECT 2",
        "SELECT count(*) FROM articles; DELETE FROM articles",
        f"ATTACH '{other}' AS o (READ_WRITE); DELETE FROM o.t",
        f"ATTACH '{link}' AS l (READ_WRITE); DELETE FROM l.articles",
    ]
    for sql in chains:
        with pytest.raises(QueryError, match="one statement per query"):
            wh.query(sql)
    for sql in ("", "   ", ";", "-- only a comment"):
        with pytest.raises(QueryError, match="empty query"):
            wh.query(sql)
    assert _articles(wh.path) == 3
    con = duckdb.connect(str(other), read_only=True)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    con.close()


def test_python_objects_are_not_reachable_by_name(wh, monkeypatch) -> None:
    import pyarrow as pa

    import warehouse.sandbox

    # A global of the module that runs the query: DuckDB's replacement scan would find it by name.
    monkeypatch.setattr(warehouse.sandbox, "leaked", pa.table({"x": [1]}), raising=False)
    with pytest.raises(QueryError, match="leaked"):
        wh.query("SELECT * FROM leaked")


def test_ordinary_selects_keep_working(wh) -> None:
    readme = [
        "SELECT title, account, published_at, copies FROM v_articles ORDER BY published_at DESC NULLS LAST LIMIT 10",
        "SELECT title, copies, copy_urls FROM v_articles WHERE copies > 1 ORDER BY copies DESC",
        "SELECT source_id, error, count(*) AS n FROM fetches "
        "WHERE error IS NOT NULL AND fetched_at > now() - INTERVAL 1 DAY GROUP BY ALL ORDER BY n DESC",
        "SELECT * FROM v_source_health",
        "SELECT title, url FROM v_articles WHERE text LIKE '%文章%' LIMIT 20",
    ]
    results = [wh.query(sql) for sql in readme]
    assert [len(r.rows) for r in results] == [2, 1, 0, 1, 2]
    assert results[1].rows[0][1] == 2
    assert wh.query("WITH a AS (SELECT count(*) AS n FROM articles) SELECT n FROM a").rows == [(3,)]
    assert wh.query("FROM sources SELECT source_id").rows == [("demo",)]
    assert wh.query("SELECT ? + 1 AS n", [41]).rows == [(42,)]
    assert "articles" in {r[0] for r in wh.query("SHOW TABLES").rows}
    assert ("title", "VARCHAR") in {r[:2] for r in wh.query("DESCRIBE articles").rows}
    assert len(wh.query("SUMMARIZE pages").rows) > 3
    assert wh.query("SELECT 1;").rows == [(1,)]                       # a trailing semicolon is one statement
    # Time zone and other settings made before the lock still hold.
    assert wh.query("SELECT current_setting('TimeZone')").rows == [("UTC",)]


def test_a_query_past_its_time_limit_is_stopped(wh) -> None:
    import time

    start = time.monotonic()
    with pytest.raises(QueryError, match="longer than 0.5 s"):
        wh.query("SELECT sum(a.i * b.i) FROM range(100000000) a(i), range(1000) b(i)", timeout_s=0.5)
    assert time.monotonic() - start < 10
    assert wh.query("SELECT count(*) FROM articles", timeout_s=5).rows == [(3,)]


def test_a_held_writer_lease_gives_way_to_a_sandboxed_query(tmp_path) -> None:
    held = Warehouse(tmp_path / "w.duckdb", hold_s=30)
    held.record_extractions([article(1)], [])
    assert held._lease.held
    assert held.query("SELECT count(*) FROM articles").rows == [(1,)]
    with pytest.raises(QueryError):
        held.query("SELECT * FROM read_text('/etc/passwd')")
    held.record_extractions([article(2)], [])                         # the writer opens the file again
    assert held.stats().rows[0][1] == 2
    held.release()


def test_missing_warehouse_is_said_once_for_every_reader(tmp_path) -> None:
    wh = Warehouse(tmp_path / "none.duckdb")
    for call in (lambda: wh.query("SELECT 1"), wh.stats, lambda: wh.export(tmp_path / "out", "csv")):
        with pytest.raises(WarehouseMissing, match=r"no warehouse at .*none\.duckdb: run `sieve demo`"):
            call()
    assert not wh.path.exists()


def test_sieve_sql_refuses_a_copy_to_a_file(tmp_path) -> None:
    from .conftest import write_config

    config = write_config(tmp_path, "http://127.0.0.1:9")
    Warehouse(tmp_path / "sieve.duckdb").record_extractions([article(1)], [])
    out = tmp_path / "dump.csv"
    done = subprocess.run([sys.executable, "-m", "flows.cli", "sql", f"COPY articles TO '{out}'", "--config", str(config)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode != 0 and not out.exists()
    assert "refused a COPY statement" in done.stderr
