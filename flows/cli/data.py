"""Commands that read the warehouse: sql, stats, export. No Prefect here.

`sql` exit codes: 0 the query ran; 2 the query is bad usage (empty, or DuckDB refused it: a syntax
error, an unknown table or column, a type error, a write to the read-only warehouse: every
`QueryError`); 1 the warehouse could not be read (none yet, or another process holds it longer
than the lock timeout).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.common import (
    ConfigOption,
    ExportFormat,
    OutputFormat,
    _load,
    _require_warehouse,
    app,
    console,
    err,
)
from flows.config import DEFAULT_CONFIG

if TYPE_CHECKING:
    from flows.config import Config


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run read-only on the warehouse")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Query the warehouse (read-only). Tables: articles, pages, fetches, frontier, crawl_runs; views v_*.

    Exit 2: the query is refused (empty, a syntax error, an unknown table or column, a write); fix it.

    Exit 1: the warehouse cannot be read (none yet, or busy).
    """
    cfg = _load(config)
    _print_query(cfg, query, fmt)


def _print_query(cfg: Config, query: str, fmt: OutputFormat) -> None:
    from warehouse import QueryError, Warehouse, WarehouseBusy, WarehouseError

    if not query.strip().strip(";").strip():
        err.print(
            'empty query: give one SQL statement, e.g. sieve sql "SELECT count(*) FROM articles"', highlight=False
        )
        raise typer.Exit(2)
    path = _require_warehouse(cfg)
    try:
        result = Warehouse(path).query(query)
    except WarehouseBusy as exc:
        err.print(f"warehouse busy: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    except QueryError as exc:  # DuckDB refused the user's SQL: bad usage, fix the query
        err.print(f"query refused: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    except WarehouseError as exc:
        err.print(f"cannot read the warehouse: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    if fmt is OutputFormat.json:
        rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, default=str, indent=None) + "\n")
    elif fmt is OutputFormat.csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        from rich.table import Table

        table = Table(*result.columns, show_lines=False)
        for row in result.rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        console.print(f"{len(result.rows)} row(s)", style="dim")


@app.command()
def stats(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Per source: articles, duplicates, pages, fetches, failures, last good crawl."""
    cfg = _load(config)
    from rich.table import Table

    from warehouse import Warehouse

    result = Warehouse(_require_warehouse(cfg)).stats()
    table = Table(*result.columns, title="sieve warehouse")
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@app.command()
def export(
    out_dir: Annotated[
        Path, typer.Argument(help="folder to write into (empty, or an earlier sieve export with --overwrite)")
    ],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.parquet,
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="articles extracted on or after")] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="replace sieve's earlier export in OUT_DIR (files sieve did not write are never touched)",
        ),
    ] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Export articles (Parquet partitioned by source and month, CSV or JSON lines).

    Exit codes: 0 written, 1 no warehouse yet, 2 bad usage (unknown source, target not empty, not writable).
    """
    from flows.cli.common import _require_source
    from warehouse import ExportError, Warehouse, WarehouseMissing

    cfg = _load(config)
    _require_source(cfg, source)

    try:
        paths = Warehouse(cfg.warehouse.path).export(
            out_dir, fmt.value, source=source, since=since.date() if since else None, overwrite=overwrite
        )
    except WarehouseMissing as exc:
        err.print(str(exc), highlight=False)
        raise typer.Exit(1) from None
    except ExportError as exc:
        err.print(f"export refused: {exc}", highlight=False)
        raise typer.Exit(2) from None
    if paths:
        console.print(f"wrote {len(paths)} file(s) under {out_dir}")
    else:
        console.print(f"no articles matched: nothing written under {out_dir}")
