"""What every command shares: the typer apps, the consoles, common options, config loading.

Exit codes: 0 the run completed (failed pages are rows, counted in the summary); 1 the run itself
failed; 2 bad usage or bad config. Commands that run no flow (extract, sql, stats, sources, eval,
export, --help) never import Prefect, so they start fast; flow modules are imported inside the commands.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from flows.config import CONFIG_ENV

if TYPE_CHECKING:
    from flows.config import Config

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}  # inherited by every command and sub-app

app = typer.Typer(
    name="sieve",
    help="Scrape content aggregators and keep only the article: fetch, clean, store in DuckDB.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings=HELP_OPTIONS,
)
rules_app = typer.Typer(
    help="Learn and manage per-source cleaning rules.", no_args_is_help=True, context_settings=HELP_OPTIONS
)
app.add_typer(rules_app, name="rules")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"sieve {version('sieve')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            print("sieve (not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool | None,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="print sieve's version and exit"),
    ] = None,
) -> None:
    """Scrape content aggregators and keep only the article: fetch, clean, store in DuckDB."""


# Piped output gets wide tables rather than rich's 80-column default, and messages unwrapped (a path or a
# query split at column 80 is hard to copy and to grep).
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", envvar=CONFIG_ENV, show_envvar=True, show_default=True, help="config file")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect's run logs")]


class OutputFormat(str, Enum):  # noqa: UP042  (StrEnum would change str() of a member: kept as it is)
    table = "table"
    csv = "csv"
    json = "json"


class ExportFormat(str, Enum):  # noqa: UP042  (as OutputFormat)
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


def _load(config_path: Path) -> Config:
    from rich.markup import escape

    from flows.config import ConfigError, ConfigNotFound, load_config

    try:
        return load_config(config_path)
    except ConfigNotFound as exc:
        origin = f" ({CONFIG_ENV} is set to it)" if os.environ.get(CONFIG_ENV) == str(config_path) else ""
        err.print(
            f"[red]config error[/red]\n{escape(str(exc))}{escape(origin)}\n"
            f"name the config with --config FILE, or set {CONFIG_ENV}=FILE for every command",
            markup=True,
            highlight=False,
        )
        raise typer.Exit(2) from None
    except ConfigError as exc:
        err.print(f"[red]config error[/red]\n{escape(str(exc))}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _require_warehouse(cfg: Config) -> Path:
    """The warehouse file, or exit 1 with what to run first when there is none yet."""
    from warehouse import Warehouse, WarehouseMissing

    try:
        Warehouse(cfg.warehouse.path).require()
    except WarehouseMissing as exc:  # the warehouse words the message: one place says what to run first
        err.print(str(exc), highlight=False)
        raise typer.Exit(1) from None
    return Path(cfg.warehouse.path)


def _require_source(cfg: Config, source: str | None) -> None:
    """Exit 2 (bad usage) for a source the config does not name; None means "all sources"."""
    if source is not None and source not in cfg.sources:
        err.print(f"unknown source {source!r}; configured: {', '.join(cfg.sources)}")
        raise typer.Exit(2)
