"""The `sieve` command line: one module per concern, all registered on one typer app.

    common.py    the app, consoles, shared options, config loading, exit codes
    runs.py      crawl, backfill, reextract, demo, serve (Prefect flows)
    data.py      sql, stats, export (the warehouse)
    sources.py   sources (config and the warehouse's last crawls: one table)
    cleaning.py  extract, eval, rules suggest (the extractor)
    fleet.py     fleet deploy, crawl, load, status (beyond one machine)
"""
from __future__ import annotations

from flows.cli import runs, data, sources, cleaning, fleet  # noqa: F401, I001  (importing registers the commands, in this order)
from flows.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app(prog_name="sieve")   # also under `python -m flows.cli`: usage lines and completion say `sieve`
