"""The DuckDB warehouse: schema and migrations, the single batched writer, read-only queries, export.

It knows nothing of HTTP or HTML: it stores rows (`warehouse.rows`) and answers SQL.
"""

from __future__ import annotations

from .claims import Claim
from .errors import ExportError, QueryError, SchemaTooNew, SourceBusy, WarehouseBusy, WarehouseError, WarehouseMissing
from .frontier import LIST_KINDS, TRANSIENT_ERRORS
from .migrations import LATEST_VERSION
from .reports import EXPORT_FORMATS
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
from .store import RUN_STATUSES, Warehouse

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
