"""Errors the warehouse raises.

WarehouseError            anything the warehouse cannot do (missing file, bad SQL, ...)
├── WarehouseBusy         the file stayed locked by another process past the timeout (transient: retry later)
├── WarehouseMissing      nothing at the configured path yet: read before anything was written
├── SchemaTooNew          the file was written by a newer sieve; refusing to touch it (terminal)
├── SourceBusy            another live run (or a fleet's open claims) holds the source: this run did not start
├── QueryError            a query given to `Warehouse.query` was refused or failed (terminal: fix the SQL)
└── ExportError           an export cannot be written as asked (target not empty, not writable)
"""

from __future__ import annotations

from pathlib import Path


class WarehouseError(Exception):
    """Base of every warehouse failure, so callers can catch one type."""


class WarehouseBusy(WarehouseError):
    """Another process held the DuckDB file longer than the lock timeout."""


class SchemaTooNew(WarehouseError):
    """The file's schema version is newer than the migrations this code knows."""


class QueryError(WarehouseError):
    """DuckDB refused a user query (syntax, unknown column, write on a read-only connection, ...)."""


class WarehouseMissing(WarehouseError):
    """No warehouse file at the path: nothing was crawled into it yet. The message says what to run."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"no warehouse at {path}: run `sieve demo` or `sieve crawl SOURCE` first")
        self.path = Path(path)


class ExportError(WarehouseError):
    """The export target cannot be written as asked (not empty without overwrite, not writable, ...)."""


class SourceBusy(WarehouseError):
    """A run that fetches was refused: another live run holds the source (its id is `holder`)."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder
