"""Errors the warehouse raises.

    WarehouseError            anything the warehouse cannot do (missing file, bad SQL, ...)
    ├── WarehouseBusy         the file stayed locked by another process past the timeout (transient: retry later)
    ├── SchemaTooNew          the file was written by a newer sieve; refusing to touch it (terminal)
    └── QueryError            DuckDB rejected a query given to `Warehouse.query` (terminal: fix the SQL)
"""
from __future__ import annotations


class WarehouseError(Exception):
    """Base of every warehouse failure, so callers can catch one type."""


class WarehouseBusy(WarehouseError):
    """Another process held the DuckDB file longer than the lock timeout."""


class SchemaTooNew(WarehouseError):
    """The file's schema version is newer than the migrations this code knows."""


class QueryError(WarehouseError):
    """DuckDB refused a user query (syntax, unknown column, write on a read-only connection, ...)."""
