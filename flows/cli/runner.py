"""How the CLI runs a flow: Prefect off the critical path, a live progress bar, one clean Ctrl-C, and
the summary table (the same RunSummary the flow stored in `crawl_runs` and published as its artifact).

Order of a `sieve crawl`: config (already loaded) -> pick the Prefect server and, with none running,
start the temporary one in the background -> start the extraction fork server -> import Prefect
(about 1-2 s; the bar says so) -> wait for the temporary server -> run the flow -> print the
summary -> exit; the temporary server is stopped after that, without waiting for it.

Ctrl-C once: the run stops claiming URLs, drops fetches in flight, commits what it has and ends
`cancelled` (within about a second or two); one line is printed and the exit code is 130. A second
Ctrl-C exits at once (what was committed stays committed).
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from flows.cli.common import console, err

if TYPE_CHECKING:
    from flows.prefect_env import PrefectForRun
    from pipeline.summary import Progress, RunSummary

INTERRUPTED = 130


def prepare_prefect(warehouse_path: Path, *, verbose: bool = False) -> "PrefectForRun":
    """Before `import prefect`: quiet defaults, the server to use (a temporary one starts now), and the
    extraction fork server (it preloads the extractor in its own process meanwhile)."""
    from flows.dask_runner import dask_setting
    from flows.prefect_env import apply_quiet_defaults, prefect_for_run

    apply_quiet_defaults(logging_level="INFO" if verbose else "WARNING")
    prefect = prefect_for_run(warehouse_path)
    if prefect.temporary is not None:
        # atexit runs after Prefect's own exit-time flushes (they run at threading shutdown), so the
        # server outlives them; stopping does not wait.
        atexit.register(prefect.temporary.stop)
    if dask_setting() is None:
        from pipeline.extract import prestart

        prestart()
    return prefect


class _Bar:
    """A rich progress bar fed by the pipeline's Progress snapshots (stderr, terminals only)."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.label = label
        self.show = not quiet and sys.stderr.isatty()
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                                 TimeElapsedColumn(), console=err, disable=not self.show, transient=True)
        self.task = self.progress.add_task(f"{label}: starting Prefect…", total=None)
        self.last: "Progress | None" = None

    def say(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.label}: {text}")

    def update(self, p: "Progress") -> None:
        self.last = p
        pages = p.fetched + p.failed
        parts = [p.phase, f"{pages}/{p.total} pages" if p.total else f"{pages} pages", f"{p.pages_per_s:.0f}/s",
                 f"{p.extracted} extracted", f"{p.failed} failed", f"{p.queued} queued"]
        if p.uncommitted:
            parts.append(f"{p.uncommitted} rows uncommitted")
        self.progress.update(self.task, description=f"{self.label}: " + " · ".join(parts), total=p.total,
                             completed=pages if p.total else 0)


def run_flow(start: Callable[[], Coroutine[Any, Any, Any]], prefect: "PrefectForRun", *, quiet: bool,
             label: str) -> list["RunSummary"]:
    """Run a flow with a progress bar; returns the summaries of its runs. Exits 1 when the run itself
    fails, 130 when interrupted (after saying what was committed)."""
    bar = _Bar(label, quiet=quiet)
    hooks = None
    try:
        with bar.progress:
            from flows.crawl import RunHooks   # imports Prefect: the slow part of start-up
            from pipeline.spec import StopSignal

            # Prefect logs a cancelled flow run's end at ERROR; after Ctrl-C the CLI's one line says it.
            logging.getLogger("prefect.flow_runs").addFilter(_no_cancel_notice)

            if prefect.temporary is not None:
                bar.say("starting Prefect's temporary server…")
                prefect.temporary.wait_healthy()
            bar.say("starting the run…")
            hooks = RunHooks(progress=bar.update, stop=StopSignal())
            asyncio.run(_main(start, hooks, bar))
    except KeyboardInterrupt:   # before the run had started (or a second Ctrl-C came through Python)
        err.print("[yellow]interrupted[/yellow] before the run started; nothing was written")
        raise typer.Exit(INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001  (the run itself failed: pages failing never get here)
        from prefect.exceptions import CancelledRun

        if not isinstance(exc, CancelledRun):
            err.print(f"[red]run failed[/red]: {type(exc).__name__}: {exc}", highlight=False)
            raise typer.Exit(1) from None
    summaries = hooks.summaries if hooks is not None else []
    if hooks is not None and hooks.stop is not None and hooks.stop.requested:
        committed = ", ".join(f"{s.source}: {s.articles_new} new articles, {s.fetched} pages" for s in summaries)
        err.print(f"[yellow]interrupted[/yellow]: committed {committed or 'nothing'}; run again to resume",
                  highlight=False)
        raise typer.Exit(INTERRUPTED)
    return summaries


def _no_cancel_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Finished in state Cancelled")


async def _main(start: Callable[[], Coroutine[Any, Any, Any]], hooks: Any, bar: _Bar) -> Any:
    from flows.crawl import run_hooks

    loop = asyncio.get_running_loop()
    presses = 0

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            bar.say("stopping: committing what was fetched… (Ctrl-C again to quit at once)")
            hooks.stop.set()
        else:
            bar.progress.stop()
            err.print("[yellow]interrupted twice[/yellow]: exiting now; what was committed stays", highlight=False)
            os._exit(INTERRUPTED)   # children (extraction workers, the temporary server) die with us

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        with run_hooks(hooks):
            return await start()
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def print_summary(summary: "RunSummary", title: str) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for label, value in summary.rows():
        table.add_row(label, value)
    console.print(table)
    for note in summary.notes():
        console.print(f"  {note}", highlight=False)

