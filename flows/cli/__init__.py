"""The `sieve` command line: one module per concern, all registered on one typer app.

common.py    the app, consoles, shared options, config loading, exit codes
runs.py      crawl, backfill, reextract, demo, serve (Prefect flows)
data.py      sql, stats, export (the warehouse)
sources.py   sources (config and the warehouse's last crawls: one table)
cleaning.py  extract, eval, rules suggest (the extractor)
fleet.py     fleet deploy, crawl, load, status (beyond one machine)
"""

from __future__ import annotations

# importing registers the commands, in this order (the order of `sieve --help`)
from flows.cli import runs, data, sources, cleaning, fleet  # noqa: F401  # isort: skip
from flows.cli.common import app

__all__ = ["app", "main"]


def _main_is_this_package() -> None:
    """Run from the `sieve` script, `__main__` is that file; a multiprocessing child (an extraction
    worker, forked from the fork server) would run it again as `__mp_main__`, importing the whole CLI
    (typer, rich, the config: about 0.3 CPU-s per worker) for nothing. Naming `flows.cli.__main__` as
    the main module, as `python -m flows.cli` does, makes children skip that (multiprocessing never
    re-runs a package's `__main__`)."""
    import importlib.util
    import sys

    main_module = sys.modules.get("__main__")
    if main_module is not None and getattr(main_module, "__spec__", None) is None:
        main_module.__spec__ = importlib.util.find_spec("flows.cli.__main__")


def main() -> None:
    _main_is_this_package()
    try:
        app(prog_name="sieve")  # also under `python -m flows.cli`: usage lines and completion say `sieve`
    except SystemExit as done:
        from flows.cli import runner

        if runner.FLOW_RAN:  # a flow ran: flush Prefect and exit at once (the teardown costs 0.5 s or more)
            code = done.code
            runner.exit_after_flow(code if isinstance(code, int) else (0 if code is None else 1))
        raise
