"""The flow process (flows/flow_process.py) against a real Prefect server, driven from this process as
the CLI drives it: a real child process imports Prefect and runs the real `crawl` flow, which adopts a
run held here.

- a window committed before the flow run existed is reported as a task run, not committed again;
- a later window commits inside its `commit-window` task run, and a locked warehouse file on the first
  attempt is retried by Prefect's task retry on the real commit;
- the flow run ends with the run's summary (completed, its artifact), and the child exits cleanly;
- a CLI run whose flow process hangs once the run ended is given up on: the run fails saying so (its
  row too), and the child is killed when its time to end the flow run is up; one that ended its flow run
  is given its time to exit; one whose flow run fails after the run fails the run; one that hangs
  before it takes the run is killed when its time to is up, and the run fails (the timeouts shortened
  here);
- a flow process that sends a corrupt frame is killed at once, and its flow run fails with why;
- a flow process starts the run's temporary server itself, and kills one that never answers;
- a run over before its flow run took it is handed to the flow process (with the temporary server), which
  records it after the CLI returned, writing to its log instead of the CLI's stderr; one not handed the
  run exits as soon as the CLI's end of its stdin closes.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer

from demo import DemoServer
from flows import flow_process
from flows.cli import runner
from flows.config import load_config
from flows.early import EndedRun, FlowCall, HandOverCommit
from flows.flow_process import FlowProcess
from flows.pipeline import crawl_plan
from flows.prefect_run import PrefectForRun, TemporaryPrefectServer
from pipeline.summary import RunSummary
from pipeline.write import Window
from tests.conftest import write_config
from tests.flow_children import (
    AdoptsThenHangs,
    AnswersAfterAWhile,
    EndsThenLingers,
    FailsAfterTheRun,
    HangsBeforeAdopting,
    NeverAnswers,
    RecordsOnceHandedTheRun,
    SendsJunk,
)
from warehouse import ExtractionCounts
from warehouse.errors import WarehouseBusy


async def _recorded(config_path: str, windows: int) -> tuple[list, list, list]:
    """The flow run of this call, its task runs and artifacts, once the server has written them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 30
    async with get_client() as client:
        while True:
            runs = [r for r in await client.read_flow_runs() if r.parameters.get("config_path") == config_path]
            ids = FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs]))
            tasks = await client.read_task_runs(flow_run_filter=ids) if runs else []
            artifacts = (await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[r.id for r in runs])))) if runs else []
            settled = (runs and runs[0].state.is_final() and len(tasks) >= windows
                       and all(t.state.is_final() for t in tasks) and artifacts)
            if settled or time.monotonic() > deadline:
                return runs, tasks, artifacts
            await asyncio.sleep(0.2)


def test_windows_commit_inside_their_task_runs_and_prefect_retries_a_locked_file_on_the_real_commit(
        tmp_path: Path, prefect_harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())   # the child reads it from its environment
    config_path = str(tmp_path / "config.yaml")   # never read: the flow adopts the run instead of building one
    relayed: list[str] = []
    flow = FlowProcess(FlowCall("crawl", {"source": "demo", "config_path": config_path}),
                       server=None, relay=relayed.append)
    attempts: list[int] = []

    def store(window: Window) -> tuple[int, ExtractionCounts]:
        """The warehouse's part of a commit; the first attempt at window 2 finds the file locked."""
        attempts.append(window.number)
        if window.number == 2 and attempts.count(2) == 1:
            raise WarehouseBusy("held by another process")
        return window.number * 10, ExtractionCounts(new=window.number)

    async def drive() -> tuple[tuple, tuple]:
        committer = HandOverCommit()
        before = await committer(Window(1, store))   # before the flow process is even listened to
        await flow.attach(committer)
        await asyncio.wait_for(flow.wait_adopted(), 120)
        after = await committer(Window(2, store))
        summary = RunSummary(kind="crawl", source="demo", status="completed", windows=2)
        flow.send(("ended", EndedRun("crawl", "demo", summary, False, str(tmp_path / "w.duckdb")), None))
        await asyncio.wait({flow.finished}, timeout=60)
        return before, after

    try:
        before, after = asyncio.run(drive())
        flow.wait_exit(30)
    finally:
        flow.kill()
    assert before == (10, ExtractionCounts(new=1)) and after == (20, ExtractionCounts(new=2))
    assert attempts == [1, 2, 2], "window 1 committed once (here), window 2 twice: the retry after the lock"
    assert flow.finished.result() is None and flow.process.returncode == 0, relayed
    runs, tasks, artifacts = asyncio.run(_recorded(config_path, windows=2))
    assert [r.state.type.value for r in runs] == ["COMPLETED"]
    assert sorted((t.name.split("-")[0:2] == ["commit", "window"], t.state.type.value, t.run_count) for t in tasks) == [
        (True, "COMPLETED", 1), (True, "COMPLETED", 2)], [(t.name, t.state, t.run_count) for t in tasks]
    assert [a.key for a in artifacts] == ["crawl-demo"]


def _how_it_ends(flow: FlowProcess, *, timeout: float) -> str | None:
    """Listen to `flow`, no run attached, until its flow run ends: None, or why it failed."""
    async def drive() -> str | None:
        await flow.attach(HandOverCommit())
        await asyncio.wait({flow.finished}, timeout=timeout)
        return flow.finished.result()

    return asyncio.run(drive())


def test_a_flow_process_whose_temporary_server_never_answers_says_so_exits_and_kills_the_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow process starts the run's temporary server itself (it is the server's parent) and gives up on
    it after its start-up timeout; a server that never answered is killed, not left to finish its start."""
    import psutil

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    server = NeverAnswers(startup_timeout=3.0)
    flow = FlowProcess(FlowCall("crawl", {"source": "demo", "config_path": str(tmp_path / "c.yaml")}),
                       server=server, relay=lambda line: None)
    try:
        failure = _how_it_ends(flow, timeout=60)
        flow.wait_exit(10)
    finally:
        flow.kill()
    assert failure is not None and failure.startswith("Prefect is not available"), failure
    assert f"{server.api_url} not healthy in time" in failure, failure
    assert not flow.adopted and flow.process.returncode == 1
    assert flow.server_pid is not None, "it said which process its server is"
    try:
        psutil.Process(flow.server_pid).wait(timeout=5)
    except psutil.NoSuchProcess:
        pass  # already gone


def _autogroups_writable() -> bool:
    """Linux with autogroups, and a new session may raise its own nice (no privilege needed for that)."""
    import subprocess

    if not Path("/proc/self/autogroup").exists():
        return False
    done = subprocess.run(["sh", "-c", "echo 19 > /proc/self/autogroup"], start_new_session=True,
                          capture_output=True, timeout=10)
    return done.returncode == 0


@pytest.mark.skipif(not _autogroups_writable(), reason="Linux autogroups only")
def test_a_temporary_server_started_for_a_crawl_yields_the_cpu_until_it_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow process starts it with `yield_cpu`: its session runs at YIELDING_NICE while it starts (the
    crawl, already running, needs the CPU more), and at 0 once it answers (it then serves the flow run);
    and at 0 after YIELD_AT_MOST_S even if it has not answered (the machine is busy with more than the crawl)."""
    from flows import prefect_run

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))

    def share(server: AnswersAfterAWhile) -> str:
        assert server.process is not None
        return Path(f"/proc/{server.process.pid}/autogroup").read_text().split()[-1]

    server = AnswersAfterAWhile(startup_timeout=30)
    server.start(yield_cpu=True)
    try:
        assert share(server) == str(prefect_run.YIELDING_NICE)
        server.wait_healthy()
        assert share(server) == "0" and server.nice == 0
        assert server.log_path.read_text().strip() == str(prefect_run.YIELDING_NICE), "it started at that nice"
    finally:
        server.stop()
    monkeypatch.setattr(prefect_run, "YIELD_AT_MOST_S", 0.3)
    slow = AnswersAfterAWhile(startup_timeout=30)
    slow.ANSWERS_AFTER_S = 2.0
    slow.start(yield_cpu=True)
    try:
        slow.wait_healthy()
        assert slow.log_path.read_text().strip() == "0", "it stopped yielding before it answered"
    finally:
        slow.stop()
    plain = AnswersAfterAWhile(startup_timeout=30)
    plain.start()
    try:
        assert share(plain) == "0", "a server the CLI waits for does not yield"
    finally:
        plain.stop()


def test_the_pipe_between_the_cli_and_the_flow_process_reads_messages_and_refuses_anything_else() -> None:
    """A real pipe: a message comes through whole; a length past MAX_FRAME_BYTES is refused before any
    of it is read (a corrupt stream must not make the CLI wait for, or hold, gigabytes), and so are bytes
    that do not unpickle and a pickle that is not a message; a closed pipe reads as None."""
    import os
    import pickle

    from flows.flow_process import FRAME_LENGTH, MAX_FRAME_BYTES, BrokenFrame, frame, read_message, reader_for

    def read(data: bytes) -> tuple | None | str:
        async def go() -> tuple | None | str:
            r, w = os.pipe()
            with os.fdopen(w, "wb", buffering=0) as out:
                out.write(data)
            reader = await reader_for(os.fdopen(r, "rb", buffering=0))
            try:
                return await read_message(reader)
            except BrokenFrame as exc:
                return f"broken: {exc}"
        return asyncio.run(go())

    def read_blocking(data: bytes) -> tuple | None | str:
        """The flow process's end: a thread reading its stdin (flows/flow_child.py `read_frame`)."""
        from flows.flow_child import read_frame

        r, w = os.pipe()
        with os.fdopen(w, "wb", buffering=0) as out:
            out.write(data)
        try:
            return read_frame(r)
        except BrokenFrame as exc:
            return f"broken: {exc}"
        finally:
            os.close(r)

    for reader in (read, read_blocking):
        assert reader(frame(("go", 7))) == ("go", 7)
        assert reader(b"") is None
        assert reader(frame(("go", 7))[:6]) is None  # cut short: the other end died mid-frame
        too_long = reader(FRAME_LENGTH.pack(MAX_FRAME_BYTES + 1) + b"x" * 64)
        assert isinstance(too_long, str) and too_long.startswith("broken: a frame of 16,777,217 bytes")
        junk = b"print('hi')\n"
        not_pickle = reader(FRAME_LENGTH.pack(len(junk)) + junk)
        assert isinstance(not_pickle, str) and not_pickle.startswith("broken: a frame that is not a message")
        data = pickle.dumps({"kind": "go"})
        not_message = reader(FRAME_LENGTH.pack(len(data)) + data)
        assert not_message == "broken: a frame holding dict, not a message"


# ---- flow processes that misbehave (tests/flow_children.py), seen by the CLI's own run code ----------
def _cli_run(call: FlowCall, tmp_path: Path, server: DemoServer, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str], *, may_outlive: bool = False, quiet: bool = True,
             temporary: TemporaryPrefectServer | None = None) -> tuple[int, str, FlowProcess, float]:
    """`runner.run_flow` as `sieve crawl` calls it, with `call` in the flow process (which starts the
    `temporary` server, if any); then what `exit_after_flow` does with the flow process. Returns the exit
    code (0: run_flow returned), stderr, the flow process and how long it took to be gone from then."""
    cfg = load_config(write_config(tmp_path, server.base_url))
    flow = FlowProcess(call, server=temporary, relay=print, may_outlive=may_outlive)
    monkeypatch.setattr(runner, "FLOW_PROCESS", flow)
    monkeypatch.setattr(runner, "FLOW_RAN", False)
    plan: Callable[..., Any] = lambda **pipeline: crawl_plan(cfg, "demo", 8, **pipeline)  # noqa: E731
    try:
        try:
            runner.run_flow(call, PrefectForRun(None, "PREFECT_API_URL"), quiet=quiet, label="crawling demo", plan=plan)
            code = 0
        except typer.Exit as exited:
            code = exited.exit_code
        started = time.monotonic()
        if flow.detached:  # what exit_after_flow does: neither wait for it nor kill it; here it is reaped
            flow.kill()
            flow.process.wait(timeout=30)
        flow.wait_exit()
        flow.process.wait(timeout=5)  # reaped: killed (SIGKILL is not instant) or exited on its own
        gone_in = time.monotonic() - started
    finally:
        flow.kill()
    return code, capsys.readouterr().err, flow, gone_in


@pytest.mark.timeout(90)
def test_a_run_over_before_its_flow_run_took_it_is_handed_to_the_flow_process_to_record_after_the_cli(
        tmp_path: Path, demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """With the temporary server (`may_outlive`), the CLI does not wait for a flow run still starting: once
    the run ended it sends the flow process the windows it committed and how the run ended, tells it to
    write to its log from now on, and returns with the run's code (saying so); `kill` leaves it alone. The
    flow process then reports every window, as committed, with the run's end."""
    report = tmp_path / "report.json"
    code, said, flow, _ = _cli_run(RecordsOnceHandedTheRun("crawl", {"source": "demo", "report": str(report)}),
                                   tmp_path, demo_server, monkeypatch, capsys, may_outlive=True, quiet=False)
    assert code == 0, said
    assert flow.detached and f"process {flow.process.pid} records this run in Prefect after sieve exits" in said, said
    assert flow.process.returncode == 0, "exited on its own: the CLI's kill leaves a flow process handed the run"
    got = json.loads(report.read_text())
    status, _, stored = _run_row(tmp_path)
    with duckdb.connect(str(tmp_path / "sieve.duckdb"), read_only=True) as con:
        ((counts,),) = con.execute("SELECT counts FROM crawl_runs").fetchall()
    windows = json.loads(counts)["windows"]
    assert status == "completed" and stored > 0 and windows >= 1
    assert got["windows"] == list(range(1, windows + 1)) and got["reported_as_committed"], got
    assert (got["status"], got["summary_windows"]) == ("completed", windows), got
    assert got["stderr"] == "/dev/null" and "said after the hand-off" not in said, "it no longer writes to the CLI"


@pytest.mark.timeout(90)
def test_a_flow_process_handed_the_run_whose_server_never_answers_says_why_in_its_log(
        tmp_path: Path, demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI says "if that fails, LOG says why": after a hand-off, a temporary server that never
    answers is a failure the CLI can no longer hear, so the flow process writes it to that log, stops the
    server and exits 1. The run itself stays as the CLI ended it."""
    import psutil

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    temporary = NeverAnswers(startup_timeout=6.0)
    code, said, flow, _ = _cli_run(RecordsOnceHandedTheRun("crawl", {"source": "demo", "report": str(tmp_path / "r")}),
                                   tmp_path, demo_server, monkeypatch, capsys, may_outlive=True, quiet=False,
                                   temporary=temporary)
    assert code == 0 and flow.detached, said
    log = temporary.recording_log(flow.process.pid)
    assert f"if that fails, {log} says why" in said, said
    assert flow.process.returncode == 1, "it recorded nothing: it says so in its exit code"
    written = log.read_text()
    assert "the run was not recorded: Prefect is not available" in written and "not healthy in time" in written, written
    assert _run_row(tmp_path)[0] == "completed"
    assert flow.server_pid is not None
    try:
        psutil.Process(flow.server_pid).wait(timeout=5)
    except psutil.NoSuchProcess:
        pass  # already gone


def test_a_flow_process_not_handed_the_run_ends_as_soon_as_the_cli_is_gone() -> None:
    """It does not ask the kernel to die with the CLI (a flow process handed the run must outlive it): it
    reads the end of its stdin instead, whatever it is doing (here a flow that never returns), and exits."""
    flow = FlowProcess(HangsBeforeAdopting("crawl", {"source": "demo"}), server=None, relay=lambda line: None)
    try:
        time.sleep(0.5)
        assert flow.process.poll() is None
        assert flow.process.stdin is not None
        flow.process.stdin.close()  # what the CLI's exit (or SIGKILL) does to its end of the pipe
        began = time.monotonic()
        code = flow.process.wait(timeout=10)
    finally:
        flow.kill()
    assert code == 1 and time.monotonic() - began < 5.0, "exited on its own, at once"


def _run_row(tmp_path: Path) -> tuple[str, str | None, int]:
    """The run's row: status, error, and the articles it stored (in the warehouse, not just counted)."""
    with duckdb.connect(str(tmp_path / "sieve.duckdb"), read_only=True) as con:
        ((status, error),) = con.execute("SELECT status, error FROM crawl_runs").fetchall()
        ((stored,),) = con.execute("SELECT count(*) FROM articles").fetchall()
    return status, error, stored


@pytest.mark.timeout(60)
def test_a_flow_process_that_hangs_after_the_run_is_killed_once_its_time_to_end_the_flow_run_is_up(
        tmp_path: Path, demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Killed when FINISH_TIMEOUT_S is up, not given EXIT_TIMEOUT_S more at exit (the CLI would hang
    FINISH + EXIT, 80 s, on a real hang): the exit timeout here is far longer than the child takes to go."""
    monkeypatch.setattr(flow_process, "FINISH_TIMEOUT_S", 0.5)
    monkeypatch.setattr(flow_process, "EXIT_TIMEOUT_S", 10.0)
    code, said, flow, gone_in = _cli_run(AdoptsThenHangs("crawl", {"source": "demo"}),
                                        tmp_path, demo_server, monkeypatch, capsys)
    assert gone_in < 3.0, f"killed by the run, not by the exit timeout: gone {gone_in:.1f} s after the run"
    assert flow.process.returncode == -signal.SIGKILL, "killed, not exited on its own"
    assert flow.adopted, "the child took the run before it hung"
    why = ("the Prefect flow run failed after the run ended completed (all it fetched is committed): "
           "the flow run did not end within 0.5 s of the run; its process was killed")
    status, error, stored = _run_row(tmp_path)
    assert (status, error) == ("failed", why), "the CLI fails the run: its row says so, and why"
    assert stored > 0, "what the crawl fetched was committed"
    assert code == 1 and f"run failed: Prefect: {why}" in said, said


@pytest.mark.timeout(60)
def test_a_flow_run_that_fails_after_the_run_fails_the_run_and_its_row_says_why(
        tmp_path: Path, demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, said, flow, _ = _cli_run(FailsAfterTheRun("crawl", {"source": "demo"}),
                                   tmp_path, demo_server, monkeypatch, capsys)
    why = ("the Prefect flow run failed after the run ended completed (all it fetched is committed): "
           "RuntimeError: the summary artifact could not be published")
    status, error, stored = _run_row(tmp_path)
    assert (status, error) == ("failed", why) and stored > 0, "the CLI fails the run: its row says so, and why"
    assert code == 1 and f"run failed: Prefect: {why}" in said, said
    assert flow.process.returncode == 0, "it said how its flow run ended, then exited on its own"


@pytest.mark.timeout(60)
def test_a_flow_process_that_ended_its_flow_run_is_given_its_time_to_exit(
        tmp_path: Path, demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The normal path keeps EXIT_TIMEOUT_S: a child still busy after its flow run ended (flushing
    Prefect) is waited for, even past FINISH_TIMEOUT_S, and exits on its own."""
    monkeypatch.setattr(flow_process, "FINISH_TIMEOUT_S", 0.5)
    monkeypatch.setattr(flow_process, "EXIT_TIMEOUT_S", 10.0)
    code, said, flow, gone_in = _cli_run(EndsThenLingers("crawl", {"source": "demo"}),
                                        tmp_path, demo_server, monkeypatch, capsys)
    assert code == 0 and "run failed" not in said, said
    assert flow.process.returncode == 0, "exited on its own, not killed"
    assert EndsThenLingers.LINGER_S - 0.5 < gone_in < 10.0, f"waited for: gone {gone_in:.1f} s after the run"
    status, error, stored = _run_row(tmp_path)
    assert (status, error) == ("completed", None) and stored > 0


@pytest.mark.timeout(30)
def test_a_flow_process_that_hangs_before_it_takes_the_run_is_killed_in_time_and_the_run_fails_saying_so(
        tmp_path: Path, demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Waited for ADOPT_TIMEOUT_S (no server to start here), not for ever: then killed, and the crawl,
    which ran meanwhile, is stopped if still running and ends `failed` saying why."""
    monkeypatch.setattr(flow_process, "ADOPT_TIMEOUT_S", 2.0)
    started = time.monotonic()
    code, said, flow, gone_in = _cli_run(HangsBeforeAdopting("crawl", {"source": "demo"}),
                                        tmp_path, demo_server, monkeypatch, capsys)
    took = time.monotonic() - started
    why = "the process running the Prefect flow run did not take the run within 2 s; it was killed"
    assert not flow.adopted and flow.process.returncode == -signal.SIGKILL, "killed, not exited on its own"
    assert gone_in < 3.0, f"killed by the run, not by the exit timeout: gone {gone_in:.1f} s after the run"
    assert took < 15.0, f"the CLI run took {took:.1f} s"
    assert code == 1 and f"run failed: Prefect: {why}" in said, said
    status, error, _ = _run_row(tmp_path)
    assert (status, error) == ("failed", why)


@pytest.mark.timeout(60)
def test_a_flow_process_that_sends_a_broken_frame_is_killed_at_once_and_its_flow_run_fails_with_why() -> None:
    """Nothing else kills it here (no run, no `wait_exit`): the CLI's end kills it on reading the frame."""
    flow = FlowProcess(SendsJunk("crawl", {"source": "demo"}), server=None, relay=print)
    try:
        failure = _how_it_ends(flow, timeout=30)
        returncode = flow.process.wait(timeout=2)
    finally:
        flow.kill()
    assert failure == "the process running the Prefect flow run sent a frame that is not a message: UnpicklingError"
    assert returncode == -signal.SIGKILL and flow.gone, "killed, not exited on its own (it sleeps an hour)"


_FLOW_PROCESS_IMPORTS = """
import pickle, sys
import flows.flow_child  # the flow process's own module
import fastapi.encoders, flows.crawl  # what it imports with Prefect (flow_child._import_prefect)
from warehouse import ExtractionCounts  # as flows.crawl._commit does
messages = pickle.loads(sys.stdin.buffer.read())  # what the CLI sends it: counts, committed windows
assert messages[0][3] == ExtractionCounts(new=1) and messages[1].counts == ExtractionCounts(new=2)
print(sorted(m for m in ("duckdb", "pyarrow", "trafilatura", "lxml", "selectolax") if m in sys.modules))
"""


def test_the_flow_process_never_loads_duckdb_or_arrow() -> None:
    """It handles the CLI's rows and counts but never opens the warehouse: DuckDB and Arrow would cost it
    about 50 MB (137 against 95 MB in a crawl)."""
    import os
    import pickle
    import subprocess
    import sys

    from flows.early import CommittedWindow

    root = Path(__file__).resolve().parents[1]
    sent = pickle.dumps([("done", 1, 10, ExtractionCounts(new=1)),
                         CommittedWindow(Window(2, lambda w: (0, ExtractionCounts())), 20, ExtractionCounts(new=2))])
    out = subprocess.run([sys.executable, "-c", _FLOW_PROCESS_IMPORTS], input=sent, capture_output=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "[]"
