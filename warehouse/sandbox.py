"""User SQL (`sieve sql`, `Warehouse.query`): one SELECT on the warehouse, and nothing else.

DuckDB's read-only mode is no sandbox: on a `read_only=True` connection `COPY ... TO`, `read_text`,
`read_csv`, `glob`, `ATTACH ... (READ_WRITE)` (even of a hard link to the warehouse itself), `SET`
and `;`-chains all work. So a user query gets a connection of its own, locked down in DuckDB's order:
external access off (no file, no network, no ATTACH, no INSTALL/LOAD), then the configuration locked
(no SET can turn it back on). On top, DuckDB's own parser must see exactly one statement, of type
SELECT (which covers WITH, VALUES, FROM-first, DESCRIBE, SHOW, SUMMARIZE); anything else is a
`QueryError` naming what was refused. Registered Python objects and replacement scans are off too.
A query may be given a time limit: past it DuckDB is interrupted and the query is a `QueryError`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

from .connection import connect
from .errors import QueryError
from .rows import QueryResult

ALLOWED = (duckdb.StatementType.SELECT,)


def lock_down(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """No Python objects, external access off, then the configuration locked (last: after it nothing can be set)."""
    con.execute("SET python_enable_replacements = false")  # no reading this process's DataFrames by name
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def one_select(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """The single SELECT statement in `sql`, or QueryError saying why not."""
    if not sql or not sql.strip():
        raise QueryError("empty query: give one SELECT statement")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from exc
    if len(statements) != 1:
        raise QueryError(
            f"one statement per query, {len(statements)} given"
            if statements
            else "empty query: give one SELECT statement"
        )
    statement = statements[0]
    if statement.type not in ALLOWED:
        kind = statement.type.name
        raise QueryError(
            f"only SELECT queries may run here (read-only, nothing outside the warehouse); refused a {kind} statement"
        )
    return statement


def run_user_query(
    path: Path, sql: str, params: Sequence | Mapping | None, *, lock_timeout_s: float, timeout_s: float | None = None
) -> QueryResult:
    """Open `path` read-only and locked down, run one SELECT, close. Caller holds the file's process lock."""
    con = lock_down(connect(path, read_only=True, timeout_s=lock_timeout_s))
    timer = None
    try:
        statement = one_select(con, sql)
        if timeout_s is not None:
            timer = threading.Timer(timeout_s, con.interrupt)
            timer.daemon = True
            timer.start()
        try:
            cursor = con.execute(statement, params) if params is not None else con.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        except duckdb.InterruptException as exc:
            raise QueryError(f"the query ran longer than {timeout_s:g} s and was stopped") from exc
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return QueryResult(columns=columns, rows=rows)
    finally:
        if timer is not None:
            timer.cancel()
        con.close()
