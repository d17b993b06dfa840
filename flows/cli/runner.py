"""How the CLI runs a flow: Prefect off the critical path, a live progress bar, one clean Ctrl-C, and
the summary table (the same RunSummary the flow stored in `crawl_runs` and published as its artifact).

Order of a `sieve crawl`: config (already loaded) -> pick the Prefect server and, with none running,
start the flow process (flows/flow_process.py: it starts the temporary server in the background if there
is to be one, imports Prefect on the other core, waits for the server, and runs the flow run) -> start
the extraction fork server -> start the run at once -> the flow run adopts it when it is up -> print the
summary -> wait for the flow process to flush Prefect and end (it stops the temporary server) -> exit.
With the temporary server, a run over before the flow run took it is handed to the flow process to record
after this process exits (`FlowProcess.hand_off`): the CLI does not wait for a server still starting.
Runs the CLI cannot start early (`reextract` of every source, a fleet crawl, SIEVE_DASK) run their flow
in this process instead, once Prefect is imported (and this process starts the temporary server).

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
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.markup import escape

from flows.cli.common import console, err
from flows.cli.progress import RunBar

if TYPE_CHECKING:
    from flows.early import FlowCall
    from flows.flow_process import FlowProcess
    from flows.pipeline import RunPlan
    from flows.prefect_run import PrefectForRun, TemporaryPrefectServer
    from pipeline.summary import RunSummary

INTERRUPTED = 130
STOP_GRACE_S = 1.0  # after a Ctrl-C ended an early run, how long Prefect may still take to record it
FLOW_RAN = False  # a flow ran in this process: main() then exits without the interpreter's slow teardown
TEMPORARY_SERVER: TemporaryPrefectServer | None = None
FLOW_PROCESS: FlowProcess | None = None  # the flow run of this CLI run, when it runs in a child process
# flow run id -> the commit-window task runs it ran: the temporary server must record them before it stops
TASK_RUNS: dict[str, int] = {}


def prepare_prefect(warehouse_path: Path, *, verbose: bool = False, call: FlowCall | None = None) -> PrefectForRun:
    """Before `import prefect`: quiet defaults, the server to use (a temporary one starts now), the flow
    process for `call` (it starts importing Prefect now), and the extraction fork server (it preloads
    the extractor in its own process meanwhile)."""
    from flows.dask_runner import dask_setting
    from flows.prefect_env import apply_quiet_defaults
    from flows.prefect_run import prefect_for_run

    global TEMPORARY_SERVER, FLOW_PROCESS
    apply_quiet_defaults(logging_level="INFO" if verbose else "WARNING")
    in_child = call is not None and dask_setting() is None  # extraction on Dask runs as task runs: flow here
    prefect = prefect_for_run(warehouse_path, start=not in_child)  # the flow process starts its own
    if prefect.temporary is not None and not in_child:
        # atexit runs after Prefect's own exit-time flushes (they run at threading shutdown), so the
        # server outlives them; stopping does not wait. (exit_after_flow stops it sooner, after flushing.)
        TEMPORARY_SERVER = prefect.temporary
        atexit.register(prefect.temporary.stop)
    if dask_setting() is None:
        if call is not None:
            from flows.flow_process import FlowProcess

            FLOW_PROCESS = FlowProcess(
                call, server=prefect.temporary, relay=lambda line: err.print(line, markup=False, highlight=False)
            )
            atexit.register(FLOW_PROCESS.kill)
        from pipeline.extract import prestart

        prestart()
    return prefect


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

    With `plan` (the run the flow will do, from flows/pipeline.py) and the flow process started by
    `prepare_prefect`, the run starts at once and the flow process's flow run adopts it. Otherwise the
    flow runs here, once Prefect is imported, and builds its own run.
    """
    from flows.early import RunHooks
    from pipeline.spec import StopSignal

    global FLOW_RAN
    FLOW_RAN = True
    bar = RunBar(label, quiet=quiet)
    hooks = RunHooks(progress=bar.update, stop=StopSignal())
    recorded = RECORDED
    try:
        with bar.progress:
            if FLOW_PROCESS is not None and plan is not None:
                recorded = asyncio.run(_main_remote(FLOW_PROCESS, hooks, bar, plan))
            else:
                asyncio.run(_main(start, hooks, bar, prefect))
    except KeyboardInterrupt:  # before the run had started (or a second Ctrl-C came through Python)
        err.print("[yellow]interrupted[/yellow] before the run started; nothing was written")
        raise typer.Exit(INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001  (the run itself failed: pages failing never get here)
        if type(exc).__name__ != "CancelledRun":  # prefect.exceptions.CancelledRun: a Ctrl-C, said below
            if isinstance(exc, PrefectUnavailable):  # its text says why; its cause, if any, what failed
                said = f"Prefect: {exc}" if exc.__cause__ is None else f"Prefect: {_error_text(exc.__cause__)}"
            else:
                said = _error_text(exc)
            err.print(f"[red]run failed[/red]: {escape(said)}", highlight=False)
            raise typer.Exit(1) from None
    finally:
        TASK_RUNS.update(hooks.task_runs)
    summaries = hooks.summaries
    if hooks.stop is not None and hooks.stop.requested:
        committed = ", ".join(f"{s.source}: {s.articles_new} new articles, {s.fetched} pages" for s in summaries)
        unrecorded = "" if recorded != NOT_RECORDED else " (not recorded in Prefect: it was still starting)"
        err.print(
            f"[yellow]interrupted[/yellow]: committed {committed or 'nothing'}; run again to resume{unrecorded}",
            highlight=False,
        )
        raise typer.Exit(INTERRUPTED)
    if recorded == HANDED_OFF and not quiet:
        assert FLOW_PROCESS is not None
        log = FLOW_PROCESS.recording_log
        err.print(
            f"[dim]Prefect was still starting: process {FLOW_PROCESS.process.pid} records this run in Prefect "
            f"after sieve exits{f' (if that fails, {escape(str(log))} says why)' if log else ''}[/dim]",
            highlight=False,
        )
    return summaries


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PrefectUnavailable(RuntimeError):
    """Prefect could not be imported or its server did not come up: the run is stopped and fails."""


@contextmanager
def _on_ctrl_c(hooks: Any, bar: RunBar) -> Iterator[None]:
    """The first Ctrl-C stops the run (it commits what it has); a second one exits at once."""
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
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _main(start: Callable[[], Coroutine[Any, Any, Any]], hooks: Any, bar: RunBar, prefect: PrefectForRun) -> None:
    """The flow in this process: import Prefect (in a thread: the bar keeps moving), wait for the
    temporary server, run the flow (it builds its own runs)."""
    from flows.early import run_hooks

    def get_ready() -> None:
        import flows.crawl  # noqa: F401  (imports Prefect: the slow part of start-up)
        from flows.prefect_env import hide_cancel_notice

        hide_cancel_notice()
        if prefect.temporary is not None:
            prefect.temporary.wait_healthy()

    with _on_ctrl_c(hooks, bar):
        bar.say("starting Prefect's temporary server…" if prefect.temporary is not None else "starting Prefect…")
        try:
            await _in_daemon_thread(get_ready)
        except Exception as exc:
            raise PrefectUnavailable(str(exc)) from exc
        bar.say("starting the run…")
        with run_hooks(hooks):
            await start()


RECORDED, NOT_RECORDED = "recorded", "not recorded"  # and HANDED_OFF, below


async def _main_remote(flow: FlowProcess, hooks: Any, bar: RunBar, plan: Callable[..., RunPlan]) -> str:
    """Start the run now; the flow process's flow run adopts it once Prefect is up. Returns RECORDED;
    NOT_RECORDED when a Ctrl-C ended the run before Prefect was up; HANDED_OFF when the run ended first
    and the flow process records it after this process exits."""
    from flows.early import EarlyRun, HandOverCommit

    with _on_ctrl_c(hooks, bar):
        committer = HandOverCommit()
        early = EarlyRun(
            plan(progress=hooks.progress, stop=hooks.stop, options=hooks.options, commit=committer), committer
        )
        early.plan.preload()
        early.start()
        assert early.task is not None
        early.task.add_done_callback(lambda _: bar.say("recording the run in Prefect…"))
        await flow.attach(committer)
        why_not = await _until_adopted(flow, early, hooks.stop)
        if why_not == GIVEN_UP:
            flow.kill()
            hooks.summaries.append(early.pipeline.summary)
            return NOT_RECORDED
        if why_not == HANDED_OFF:
            error, ended = _how_it_ended(early)
            handed = flow.hand_off(ended, None if error is None else _error_text(error))
            if error is not None:
                raise error
            hooks.summaries.append(early.pipeline.summary)
            return HANDED_OFF if handed else NOT_RECORDED
        if why_not is not None:  # no flow run will take it: stop it (what it fetched is committed), fail it
            flow.kill()
            await early.abandon(why_not)
            raise PrefectUnavailable(why_not)
        running: set[asyncio.Future[Any]] = {early.task, flow.finished}
        await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        if not early.task.done():  # the flow process failed mid-run: the run stops and commits here
            reason = flow.finished.result() or "the flow run ended before the run"
            await early.abandon(reason)
            raise PrefectUnavailable(reason)
        error, ended = _how_it_ended(early)
        flow.send(("ended", ended, None if error is None else _error_text(error)))
        failure = await flow.until_finished()  # a flow process that did not end its flow run in time is killed
        if error is not None:
            raise error
        if failure is not None:
            raise PrefectUnavailable(await early.flow_run_failed(failure))
        hooks.summaries.append(early.pipeline.summary)
        return RECORDED


def _how_it_ended(early: Any) -> tuple[BaseException | None, Any]:
    """The ended run's error (None if none) and what its flow run needs of it (`EndedRun`, if no error)."""
    from flows.early import EndedRun

    error = None if early.task.cancelled() else early.task.exception()
    return error, EndedRun.of(early.plan) if error is None else None


GIVEN_UP, HANDED_OFF = "given up", "handed off"


async def _until_adopted(flow: FlowProcess, early: Any, stop: Any) -> str | None:
    """None once the flow run took the run; else why not: the flow process's failure (its temporary
    server's too: the flow process started it and watches it), the flow process's time to take it passed
    (it is killed), HANDED_OFF when the run ended first and the flow process may record it after this
    process exits, or GIVEN_UP when a Ctrl-C ended the run and Prefect was still not up `STOP_GRACE_S`
    later (a Ctrl-C stops a run within a second or two: it does not wait for a server still starting)."""

    async def stopped_and_ended() -> None:
        await stop.wait()
        await asyncio.wait({early.task})
        await asyncio.sleep(STOP_GRACE_S)

    adopted = asyncio.ensure_future(flow.wait_adopted())
    giving_up = asyncio.ensure_future(stopped_and_ended())
    try:
        while True:
            waiting: set[asyncio.Future[Any]] = {adopted, flow.finished, giving_up, early.task}
            await asyncio.wait(waiting, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
            if adopted.done():
                return None
            if flow.finished.done():  # first: a flow process that said it failed is not handed the run
                return flow.finished.result() or "the flow process ended before its flow run took the run"
            if flow.may_outlive and early.task.done() and not stop.requested and not flow.gone:
                return HANDED_OFF
            if giving_up.done() and not flow.ready:
                return GIVEN_UP
            if (overdue := flow.adoption_overdue()) is not None:
                return overdue
    finally:
        adopted.cancel()
        giving_up.cancel()


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
            from flows.prefect_env import flush_prefect

            flush_prefect()
        except Exception:  # noqa: BLE001  (never let a flush failure change the exit code)
            logging.getLogger("sieve").debug("flushing Prefect before exit failed", exc_info=True)
    if FLOW_PROCESS is not None and not FLOW_PROCESS.detached:  # it flushes Prefect, waits for the server
        FLOW_PROCESS.wait_exit()
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
