"""What every command shares: the typer apps, the consoles, common options, config loading.

Exit codes: 0 the run completed (failed pages are rows, counted in the summary); 1 the run itself
failed; 2 bad usage or bad config. Commands that run no flow (extract, sql, stats, eval, export,
--help) never import Prefect, so they start fast; flow modules are imported inside the commands.
"""
from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from flows.config import Config

app = typer.Typer(
    name="sieve",
    help="Scrape content aggregators and keep only the article: fetch, clean, store in DuckDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rules_app = typer.Typer(help="Learn and manage per-source cleaning rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

# Piped output gets wide tables rather than rich's 80-column default.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="config file", show_default=True)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect's run logs")]
DEFAULT_CONFIG = Path("config.yaml")


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class ExportFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


def _load(config_path: Path) -> "Config":
    from flows.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        err.print(f"[red]config error[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _require_source(cfg: "Config", source: str | None) -> None:
    """Exit 2 (bad usage) for a source the config does not name; None means "all sources"."""
    if source is not None and source not in cfg.sources:
        err.print(f"unknown source {source!r}; configured: {', '.join(cfg.sources)}")
        raise typer.Exit(2)


