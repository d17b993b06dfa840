"""The DuckDB warehouse: schema and migrations, the single batched writer, read-only queries, export.

It knows nothing of HTTP or HTML: it stores rows (`warehouse.rows`) and answers SQL.

The row types and errors are plain Python and load with the package; what needs DuckDB or Arrow loads when
first named (PEP 562). So a process that only handles rows never maps DuckDB and Arrow (about 50 MB): the
flow process unpickles `ExtractionCounts` from the CLI and never opens the file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import ExportError, QueryError, SchemaTooNew, SourceBusy, WarehouseBusy, WarehouseError, WarehouseMissing
from .rows import (
    ArticleRow,
    ExtractionCounts,
    FetchRow,
    FrontierItem,
    FrontierRow,
    PageRow,
    QueryResult,
    Rejection,
    SourceRow,
)

if TYPE_CHECKING:
    from .claims import Claim
    from .frontier import LIST_KINDS, TRANSIENT_ERRORS
    from .migrations import LATEST_VERSION
    from .reports import EXPORT_FORMATS
    from .store import RUN_STATUSES, Warehouse

_LAZY = {
    "Claim": ".claims",
    "LIST_KINDS": ".frontier",
    "TRANSIENT_ERRORS": ".frontier",
    "LATEST_VERSION": ".migrations",
    "EXPORT_FORMATS": ".reports",
    "RUN_STATUSES": ".store",
    "Warehouse": ".store",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "EXPORT_FORMATS",
    "ExportError",
    "LATEST_VERSION",
    "LIST_KINDS",
    "RUN_STATUSES",
    "TRANSIENT_ERRORS",
    "ArticleRow",
    "Claim",
    "ExtractionCounts",
    "FetchRow",
    "FrontierItem",
    "FrontierRow",
    "PageRow",
    "QueryError",
    "QueryResult",
    "Rejection",
    "SchemaTooNew",
    "SourceBusy",
    "SourceRow",
    "Warehouse",
    "WarehouseBusy",
    "WarehouseError",
    "WarehouseMissing",
]
