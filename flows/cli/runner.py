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
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from flows.cli.common import console, err

if TYPE_CHECKING:
    from flows.pipeline import RunPlan
    from flows.prefect_run import PrefectForRun, TemporaryPrefectServer
    from pipeline.summary import Progress, RunSummary

INTERRUPTED = 130
STOP_GRACE_S = 1.0  # after a Ctrl-C ended an early run, how long Prefect may still take to record it
FLOW_RAN = False  # a flow ran in this process: main() then exits without the interpreter's slow teardown
TEMPORARY_SERVER: TemporaryPrefectServer | None = None
# flow run id -> the commit-window task runs it ran: the temporary server must record them before it stops
TASK_RUNS: dict[str, int] = {}


def prepare_prefect(warehouse_path: Path, *, verbose: bool = False) -> PrefectForRun:
    """Before `import prefect`: quiet defaults, the server to use (a temporary one starts now), and the
    extraction fork server (it preloads the extractor in its own process meanwhile)."""
    from flows.dask_runner import dask_setting
    from flows.prefect_env import apply_quiet_defaults
    from flows.prefect_run import prefect_for_run

    global TEMPORARY_SERVER
    apply_quiet_defaults(logging_level="INFO" if verbose else "WARNING")
    prefect = prefect_for_run(warehouse_path)
    if prefect.temporary is not None:
        # atexit runs after Prefect's own exit-time flushes (they run at threading shutdown), so the
        # server outlives them; stopping does not wait. (exit_after_flow stops it sooner, after flushing.)
        TEMPORARY_SERVER = prefect.temporary
        atexit.register(prefect.temporary.stop)
    if dask_setting() is None:
        from pipeline.extract import prestart

        prestart()
    return prefect


class _Bar:
    """A rich progress bar fed by the pipeline's Progress snapshots (stderr, terminals only)."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        # rich's Progress (the bar) under another name: `Progress` here is the pipeline's snapshot
        from rich.progress import BarColumn, Progress as ProgressBar, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.label = label
        self.show = not quiet and sys.stderr.isatty()
        self.progress = ProgressBar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            console=err,
            disable=not self.show,
            transient=True,
        )
        self.task = self.progress.add_task(f"{label}: starting Prefect…", total=None)
        self.last: Progress | None = None

    def say(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.label}: {text}")

    def update(self, p: Progress) -> None:
        self.last = p
        pages = p.fetched + p.failed
        parts = [
            p.phase,
            f"{pages}/{p.total} pages" if p.total else f"{pages} pages",
            f"{p.pages_per_s:.0f}/s",
            f"{p.extracted} extracted",
            f"{p.failed} failed",
            f"{p.queued} queued",
        ]
        if p.uncommitted:
            parts.append(f"{p.uncommitted} rows uncommitted")
        self.progress.update(
            self.task,
            description=f"{self.label}: " + " · ".join(parts),
            total=p.total,
            completed=pages if p.total else 0,
        )


def run_flow(
    start: Callable[[], Coroutine[Any, Any, Any]],
    prefect: PrefectForRun,
    *,
    quiet: bool,
    label: str,
    plan: Callable[..., RunPlan] | None = None,
) -> list[RunSummary]:
    """Run a flow with a progress bar; returns the summaries of its runs. Exits 1 when the run itself
    fails, 130 when interrupted (after saying what was committed).

    `plan` (the run the flow will do, from flows/pipeline.py) starts at once, before Prefect is imported
    and its server answers; the flow then adopts it (flows/early.py). Without it the flow builds its own.
    """
    from flows.dask_runner import dask_setting
    from flows.early import RunHooks
    from pipeline.spec import StopSignal

    global FLOW_RAN
    FLOW_RAN = True
    bar = _Bar(label, quiet=quiet)
    hooks = RunHooks(progress=bar.update, stop=StopSignal())
    if dask_setting() is not None:  # extraction on Dask runs as task runs of the flow: nothing starts early
        plan = None
    recorded = True
    try:
        with bar.progress:
            recorded = asyncio.run(_main(start, hooks, bar, prefect, plan))
    except KeyboardInterrupt:  # before the run had started (or a second Ctrl-C came through Python)
        err.print("[yellow]interrupted[/yellow] before the run started; nothing was written")
        raise typer.Exit(INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001  (the run itself failed: pages failing never get here)
        if type(exc).__name__ != "CancelledRun":  # prefect.exceptions.CancelledRun: a Ctrl-C, said below
            shown = exc.__cause__ if isinstance(exc, PrefectUnavailable) and exc.__cause__ else exc
            where = "Prefect: " if isinstance(exc, PrefectUnavailable) else ""
            err.print(f"[red]run failed[/red]: {where}{type(shown).__name__}: {shown}", highlight=False)
            raise typer.Exit(1) from None
    finally:
        TASK_RUNS.update(hooks.task_runs)
    summaries = hooks.summaries
    if hooks.stop is not None and hooks.stop.requested:
        committed = ", ".join(f"{s.source}: {s.articles_new} new articles, {s.fetched} pages" for s in summaries)
        unrecorded = "" if recorded else " (not recorded in Prefect: it was still starting)"
        err.print(
            f"[yellow]interrupted[/yellow]: committed {committed or 'nothing'}; run again to resume{unrecorded}",
            highlight=False,
        )
        raise typer.Exit(INTERRUPTED)
    return summaries


class PrefectUnavailable(RuntimeError):
    """Prefect could not be imported or its server did not come up: the run is stopped and fails."""


def _import_flows() -> None:
    import flows.crawl  # noqa: F401  (imports Prefect: the slow part of start-up)

    # isort: split
    # Prefect imports this while creating the flow run (serialising its parameters), ~0.2-0.3 s; here it
    # is off the critical path (while the temporary server comes up, or the pipeline waits on the network)
    import fastapi.encoders  # noqa: F401


def _no_cancel_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Finished in state Cancelled")


async def _main(
    start: Callable[[], Coroutine[Any, Any, Any]],
    hooks: Any,
    bar: _Bar,
    prefect: PrefectForRun,
    plan: Callable[..., RunPlan] | None,
) -> bool:
    """Start the run (if `plan`), get Prefect ready meanwhile, run the flow. False when Ctrl-C ended an
    early run before Prefect was ready (the flow was then not run: the run is not in Prefect)."""
    from flows.early import EarlyRun, HandOverCommit, run_hooks

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
            os._exit(INTERRUPTED)  # children (extraction workers, the temporary server) die with us

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        early = None
        if plan is not None:  # fetching starts now; Prefect is imported meanwhile, in a thread
            committer = HandOverCommit()
            early = EarlyRun(
                plan(progress=hooks.progress, stop=hooks.stop, options=hooks.options, commit=committer), committer
            )
            hooks.early[(early.plan.kind, early.plan.source)] = early
            early.plan.preload()  # before Prefect's import starts in its thread: no contention on module locks
            early.start()
            assert early.task is not None
            early.task.add_done_callback(lambda _: bar.say("recording the run in Prefect…"))
        elif prefect.temporary is not None:
            bar.say("starting Prefect's temporary server…")
        try:
            if not await _prefect_ready(prefect, early, hooks.stop):
                assert early is not None
                hooks.summaries.append(early.pipeline.summary)
                return False
        except Exception as exc:
            if early is not None:  # no flow run will take it: stop it (what it fetched is committed), fail it
                await early.abandon(f"Prefect is not available: {type(exc).__name__}: {exc}")
            raise PrefectUnavailable(str(exc)) from exc
        if early is None:
            bar.say("starting the run…")
        with run_hooks(hooks):
            try:
                await start()
            except BaseException as exc:  # the flow run never took the early run: it must not end as cancelled
                for run in list(hooks.early.values()):
                    await run.abandon(f"the flow run did not start: {type(exc).__name__}: {exc}"[:500])
                hooks.early.clear()
                raise
        return True
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _prefect_ready(prefect: PrefectForRun, early: Any, stop: Any) -> bool:
    """Import Prefect and wait for the temporary server, if any; False when a Ctrl-C stopped the early
    run and Prefect was still not ready `STOP_GRACE_S` after the run had committed and ended (a Ctrl-C
    stops a run within a second or two: it does not wait for a server still starting)."""

    def get_ready() -> None:
        _import_flows()
        # Prefect logs a cancelled flow run's end at ERROR; after Ctrl-C the CLI's one line says it.
        logging.getLogger("prefect.flow_runs").addFilter(_no_cancel_notice)
        if prefect.temporary is not None:
            prefect.temporary.wait_healthy()

    ready = _in_daemon_thread(get_ready)
    if early is None:
        await ready
        return True

    async def stopped_and_ended() -> None:
        await stop.wait()
        await asyncio.wait({early.task})
        await asyncio.sleep(STOP_GRACE_S)

    giving_up = asyncio.ensure_future(stopped_and_ended())
    try:
        await asyncio.wait({ready, giving_up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        giving_up.cancel()
    if ready.done():
        ready.result()
        return True
    return False


def _in_daemon_thread(call: Callable[[], Any]) -> asyncio.Future[Any]:
    """`call()` in a daemon thread: unlike `asyncio.to_thread`, neither asyncio.run's end nor the
    process's exit waits for it (a server still starting, an import, when the run is given up)."""
    import threading

    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = call(), None
        except BaseException as exc:  # noqa: BLE001  (handed to the awaiting coroutine)
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the run was given up and nobody waits for this any more
            pass

    threading.Thread(target=run, name="sieve-prefect-start", daemon=True).start()
    return future


def print_summary(summary: RunSummary, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for label, value in summary.rows():
        table.add_row(label, value)
    console.print(table)
    for note in summary.notes():
        console.print(f"  {note}", highlight=False)


def exit_after_flow(code: int) -> NoReturn:
    """End the process now that its exit code is known, skipping the interpreter's teardown (0.5-0.7 s of
    joining Prefect's threads, finalizers, module cleanup) but losing nothing: Prefect's queued events
    (task run states) and logs are sent first (bounded, 5 s each), the flow run's final state is already
    on the server (the engine sets it before the flow call returns), the warehouse file was closed when
    the run ended, and the extraction workers were stopped with it. Then, once the temporary server has
    recorded the task runs (their states arrive as events; bounded, 5 s), it is told to stop, and output
    is flushed."""
    if "prefect" in sys.modules:
        try:
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            for name in ("EventsWorker", "APILogWorker"):  # "Still processing items: N remaining": they are sent
                logging.getLogger(name).setLevel(logging.ERROR)
            APILogWorker.drain_all(timeout=5)
            EventsWorker.drain_all(timeout=5)
        except Exception:  # noqa: BLE001  (never let a flush failure change the exit code)
            logging.getLogger("sieve").debug("flushing Prefect before exit failed", exc_info=True)
    if TEMPORARY_SERVER is not None:
        if not TEMPORARY_SERVER.wait_recorded(TASK_RUNS):
            logging.getLogger("sieve").warning("Prefect's temporary server had not recorded every task run in 5 s")
        TEMPORARY_SERVER.stop()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
