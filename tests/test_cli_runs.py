"""`sieve crawl` as a user runs it, on Prefect's temporary server or on one that is already up.

- with `sieve serve`'s server recorded for the warehouse, a CLI run reports there (no temporary server);
- on the temporary server, the run starts fetching before Prefect is up, yet the server records the
  flow run completed, every window as a commit-window task run and the summary artifact, although the
  CLI exits at once after flushing (no interpreter teardown), or, with a crawl over before the server
  answered, before the flow run even began (its flow process records it after; no log is left);
- a Prefect that cannot be reached fails the run (exit 1, the reason; the run row `failed`);
- Ctrl-C on a run with the temporary server: exit 130, one line, no traceback, the run row's counts
  equal what was committed, and the server lived on to record the flow run as Cancelled;
- SIGKILL of `sieve`: the temporary server, the fork server, the extraction workers and the resource
  tracker are gone within seconds.

The temporary-server tests share one PREFECT_HOME, migrated once by the module fixture.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from demo import DemoServer, DemoSite
from flows.prefect_env import remove_server_file, served_api_url, server_file, write_server_file
from tests.conftest import ROOT, copy_prefect_database, write_config


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra)
    return env


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _articles_requested(server: DemoServer) -> int:
    return sum(1 for p, _ in list(server.requests) if p.startswith("/news/"))


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory, prefect_database: Path) -> Path:
    """A PREFECT_HOME whose database is already migrated (a server's first start on an empty home spends
    12 CPU-s migrating)."""
    home = tmp_path_factory.mktemp("prefect-home")
    copy_prefect_database(prefect_database, home / "prefect.db")
    return home


def _crawl(config: Path, env: dict[str, str]) -> subprocess.Popen:
    """In a process group of its own, as a terminal's foreground job: a Ctrl-C reaches the whole group."""
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "crawl", "demo", "--config", str(config)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


# ---- a server that is already up ----------------------------------------------------------------
def test_the_server_file_names_a_live_server_only(tmp_path: Path, prefect_harness) -> None:
    from prefect.settings import PREFECT_API_URL

    warehouse = tmp_path / "data" / "sieve.duckdb"
    assert served_api_url(warehouse) is None
    write_server_file(warehouse, PREFECT_API_URL.value())
    assert served_api_url(warehouse) == PREFECT_API_URL.value()
    data = json.loads(server_file(warehouse).read_text(encoding="utf-8"))
    server_file(warehouse).write_text(json.dumps({**data, "pid": 2 ** 22 + 7}), encoding="utf-8")   # no such pid
    assert served_api_url(warehouse) is None
    server_file(warehouse).write_text(json.dumps({**data, "api_url": "http://127.0.0.1:9/api"}), encoding="utf-8")
    assert served_api_url(warehouse) is None, "a server that does not answer is not used"
    write_server_file(warehouse, PREFECT_API_URL.value())
    remove_server_file(warehouse)
    assert not server_file(warehouse).exists()


def test_a_cli_run_reports_to_the_server_sieve_serve_recorded(tmp_path: Path, prefect_harness) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    site = DemoSite(12)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        write_server_file(tmp_path / "sieve.duckdb", PREFECT_API_URL.value())   # as `sieve serve` does
        started = time.time()
        done = subprocess.run([sys.executable, "-m", "flows.cli", "crawl", "demo", "--quiet", "--config", str(config)],
                              cwd=ROOT, env=_env(PREFECT_HOME=str(tmp_path / "empty-home")),
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "empty-home" / "sieve-temporary-server.log").exists(), "no temporary server started"
    run_id = _rows(tmp_path / "sieve.duckdb", "SELECT run_id FROM crawl_runs")[0][0]

    async def flow_runs() -> list:
        async with get_client() as client:
            return await client.read_flow_runs()

    ours = [r for r in asyncio.run(flow_runs()) if r.parameters.get("config_path") == str(config)]
    assert len(ours) == 1 and ours[0].state.is_completed(), "the run shows in that server"
    assert ours[0].start_time.timestamp() >= started - 5 and run_id


def test_a_prefect_that_cannot_be_reached_fails_the_run_and_says_so(tmp_path: Path) -> None:
    site = DemoSite(12)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        done = subprocess.run([sys.executable, "-m", "flows.cli", "crawl", "demo", "--quiet", "--config", str(config)],
                              cwd=ROOT, env=_env(PREFECT_HOME=str(tmp_path / "home"), PREFECT_API_URL="http://127.0.0.1:9/api"),
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "run failed" in done.stderr and "127.0.0.1:9" in done.stderr, done.stderr
    (status, error), = _rows(tmp_path / "sieve.duckdb", "SELECT status, error FROM crawl_runs")
    assert status == "failed" and "flow run did not start" in error, (status, error)


def test_a_flow_process_killed_mid_run_fails_the_run_and_keeps_what_was_fetched(tmp_path: Path,
                                                                                prefect_harness) -> None:
    """The flow run runs in a child of the CLI (flows/flow_process.py). SIGKILLed mid-run, the CLI notices
    at once, commits what it fetched itself, fails the run and says why; nothing is committed twice."""
    from prefect.settings import PREFECT_API_URL

    site = DemoSite(300)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url,
                              demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.03}})
        proc = _crawl(config, _env(PREFECT_HOME=str(tmp_path / "home"), PREFECT_API_URL=PREFECT_API_URL.value()))
        deadline = time.monotonic() + 120

        def flow_processes() -> list[psutil.Process]:
            return [p for p in psutil.Process(proc.pid).children() if p.name() == "sieve-flow-run"]

        while time.monotonic() < deadline and proc.poll() is None and not (
                _articles_requested(server) >= 40 and (tmp_path / "sieve.duckdb").exists()
                and flow_processes() and flow_processes()[0].num_threads() > 1):   # Prefect's threads: it is up
            time.sleep(0.05)
        time.sleep(1.0)   # past the flow run's start: its windows now commit through task runs
        (child,) = flow_processes()
        # its own process group (a terminal's Ctrl-C is the CLI's), the CLI's session (the CPU is shared
        # between sessions first: the temporary server keeps its core while this one imports Prefect)
        assert os.getpgid(child.pid) == child.pid != os.getpgid(proc.pid) and os.getsid(child.pid) == os.getsid(proc.pid)
        child.kill()
        killed = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        ended_in = time.monotonic() - killed
    assert proc.returncode == 1, (stdout, stderr)
    assert "run failed" in stderr and "Prefect flow run exited with code -9" in stderr, stderr
    assert ended_in < 10, f"took {ended_in:.1f} s to notice and end"
    db = tmp_path / "sieve.duckdb"
    status, error, counts = _rows(db, "SELECT status, error, counts FROM crawl_runs")[0]
    stored = _rows(db, "SELECT count(*) FROM articles")[0][0]
    assert status == "failed" and "Prefect flow run exited with code -9" in error, (status, error)
    assert 0 < stored < site.n_articles and json.loads(counts)["articles_new"] == stored, "the run row counts what was committed"
    fetched = _rows(db, "SELECT count(DISTINCT url) FROM fetches WHERE status = 200 AND kind = 'article'")[0][0]
    kept = _rows(db, "SELECT count(*) FROM pages WHERE kind = 'article'")[0][0]
    # a page whose extraction the stop cut short is kept, for the next run to extract (`reextracted`)
    assert fetched == kept >= stored, "every article page fetched was committed"


# ---- the temporary server ---------------------------------------------------------------------------
def test_a_run_on_the_temporary_server_records_its_flow_run_windows_and_artifact(tmp_path: Path,
                                                                                 prefect_home: Path) -> None:
    import sqlite3

    site = DemoSite(30)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        done = subprocess.run([sys.executable, "-m", "flows.cli", "crawl", "demo", "--config", str(config)],
                              cwd=ROOT, env=_env(PREFECT_HOME=str(prefect_home)), capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Still processing" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    (counts,), = _rows(tmp_path / "sieve.duckdb", "SELECT counts FROM crawl_runs")
    windows = json.loads(counts)["windows"]
    assert json.loads(counts)["articles_new"] == site.n_articles and windows >= 1
    # A crawl this small is usually over before the server answers: the CLI then hands the run to its
    # flow process, which records it after the CLI exited (and says which process that is).
    if handed := re.search(r"process (\d+) records this run in Prefect after sieve exits", done.stderr):
        try:
            psutil.Process(int(handed.group(1))).wait(timeout=120)
        except psutil.NoSuchProcess:
            pass
        assert not list(prefect_home.glob("sieve-recording-*.log")), "a hand-off recorded in full keeps no log"
    # the server is gone with the run: read what it recorded from its database (it may still be
    # finishing its shutdown for a moment)
    deadline = time.monotonic() + 30
    while True:
        with sqlite3.connect(prefect_home / "prefect.db") as db_con:
            runs = [(run_id, state) for run_id, state, params in
                    db_con.execute("SELECT id, state_type, parameters FROM flow_run")
                    if json.loads(params).get("config_path") == str(config)]
            tasks = db_con.execute("SELECT name, state_type FROM task_run WHERE flow_run_id = ?",
                                   [runs[0][0]]).fetchall() if runs else []
            artifacts = db_con.execute("SELECT key FROM artifact WHERE flow_run_id = ?",
                                       [runs[0][0]]).fetchall() if runs else []
        settled = len(tasks) >= windows and all(state == "COMPLETED" for _, state in tasks) and runs and artifacts
        if settled or time.monotonic() > deadline:   # the server records states from events, a moment later
            break
        time.sleep(0.2)
    assert [state for _, state in runs] == ["COMPLETED"], runs
    commits = [state for name, state in tasks if name.startswith("commit-window")]
    assert commits == ["COMPLETED"] * windows, f"every window is a task run of the flow run: {tasks} ({windows} windows)"
    assert artifacts == [("crawl-demo",)]


def _flow_run_states(prefect_home: Path, config: Path) -> list[str]:
    """The states of this config's flow runs, read from the temporary server's own database."""
    import sqlite3

    try:
        with sqlite3.connect(prefect_home / "prefect.db", timeout=5) as db_con:
            return [state for state, params in db_con.execute("SELECT state_type, parameters FROM flow_run")
                    if json.loads(params).get("config_path") == str(config)]
    except sqlite3.OperationalError:   # the server is writing a migration or its first row
        return []


def _interrupt(proc: subprocess.Popen) -> tuple[str, str, float]:
    os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C on the terminal does: the whole foreground group
    sent = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    return stdout, stderr, time.monotonic() - sent


def test_the_temporary_server_is_stopped_only_once_it_has_written_the_task_runs_reported(
        prefect_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Task run states reach the server as events and are written a moment later; the CLI waits for
    them (bounded) before stopping the server, which would cancel a write in progress."""
    import uuid

    import httpx

    from flows.prefect_run import TemporaryPrefectServer

    monkeypatch.setenv("PREFECT_HOME", str(prefect_home))
    server = TemporaryPrefectServer()
    api = server.start()
    try:
        server.wait_healthy()
        assert server.wait_recorded({})   # nothing reported: nothing to wait for
        with httpx.Client(base_url=api, trust_env=False, timeout=10) as client:
            flow_id = client.post("/flows/", json={"name": "recorded"}).json()["id"]
            run_id = client.post("/flow_runs/", json={"flow_id": flow_id}).json()["id"]
            began = time.monotonic()
            assert not server.wait_recorded({run_id: 1}, timeout=0.5)   # not written: it gives up, bounded
            assert 0.5 <= time.monotonic() - began < 5
            client.post("/task_runs/", json={"name": "commit-window-1", "flow_run_id": run_id, "task_key": "k",
                                             "dynamic_key": "0", "state": {"type": "RUNNING"}}).raise_for_status()
            assert not server.wait_recorded({run_id: 1}, timeout=0.3)   # running is not final
            client.post("/task_runs/", json={"name": "commit-window-2", "flow_run_id": run_id, "task_key": "k",
                                             "dynamic_key": "1", "state": {"type": "COMPLETED"}}).raise_for_status()
            assert server.wait_recorded({run_id: 1}, timeout=5)
            assert not server.wait_recorded({run_id: 2, str(uuid.uuid4()): 0}, timeout=0.3)
    finally:
        process = server.process
        server.stop()
        if process is not None:
            process.wait(timeout=30)


def test_ctrl_c_stops_within_seconds_says_one_line_and_keeps_the_server_to_record_it(
        tmp_path: Path, prefect_home: Path) -> None:
    site = DemoSite(300)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url,
                              demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.1}})
        proc = _crawl(config, _env(PREFECT_HOME=str(prefect_home)))
        deadline = time.monotonic() + 240
        # the crawl starts before Prefect is up; this case is a Ctrl-C once the flow run exists. At one
        # page per 0.1 s the crawl takes 30 s, longer than a temporary server takes to start on a busy
        # CI machine (at 0.03 s it once ended first, and the run was rightly recorded completed).
        while time.monotonic() < deadline and proc.poll() is None and not (
                _articles_requested(server) >= 40 and _flow_run_states(prefect_home, config) == ["RUNNING"]):
            time.sleep(0.05)
        assert _articles_requested(server) < site.n_articles, "the crawl ended before Prefect was up"
        uvicorn = [p for p in psutil.Process(proc.pid).children(recursive=True) if "uvicorn" in " ".join(p.cmdline())]
        stdout, stderr, stopped_in = _interrupt(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    said = [line for line in stderr.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("interrupted") and "not recorded" not in said[0], said
    assert stopped_in < 5.0, f"took {stopped_in:.1f} s to stop (the target is 2 s on an idle machine)"
    print(f"stopped {stopped_in:.2f} s after SIGINT")
    assert len(uvicorn) == 1, "the run used a temporary server sieve started"
    db = tmp_path / "sieve.duckdb"
    status, counts = _rows(db, "SELECT status, counts FROM crawl_runs")[0]
    stored = _rows(db, "SELECT count(*) FROM articles")[0][0]
    assert status == "cancelled" and 0 < stored < site.n_articles
    assert json.loads(counts)["articles_new"] == stored, "the run row counts what was committed"
    assert f"{stored} new articles" in said[0]
    # The temporary server was not killed by the terminal's SIGINT: it recorded the flow run's end (read
    # from its database: the server itself is gone with the run, and may finish writing for a moment).
    deadline = time.monotonic() + 30
    while _flow_run_states(prefect_home, config) != ["CANCELLED"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _flow_run_states(prefect_home, config) == ["CANCELLED"]


def test_ctrl_c_before_prefect_is_up_stops_at_once_and_says_the_run_is_not_in_prefect(tmp_path: Path) -> None:
    """A fresh PREFECT_HOME: the temporary server spends many seconds migrating its database, while the
    crawl, which does not wait for it, is already fetching. A Ctrl-C then does not wait for the server."""
    site = DemoSite(300)
    home = tmp_path / "fresh-home"
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url,
                              demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.03}})
        proc = _crawl(config, _env(PREFECT_HOME=str(home)))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _articles_requested(server) < 20 and proc.poll() is None:
            time.sleep(0.02)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert _flow_run_states(home, config) == [], "Prefect was not up yet"
        stdout, stderr, stopped_in = _interrupt(proc)
    assert proc.returncode == 130, stderr
    said = [line for line in stderr.splitlines() if line.strip()]
    assert len(said) == 1 and "not recorded in Prefect" in said[0], said
    assert stopped_in < 5.0, f"took {stopped_in:.1f} s to stop (the target is 2 s on an idle machine)"
    db = tmp_path / "sieve.duckdb"
    status, counts = _rows(db, "SELECT status, counts FROM crawl_runs")[0]
    stored = _rows(db, "SELECT count(*) FROM articles")[0][0]
    assert status == "cancelled" and json.loads(counts)["articles_new"] == stored > 0
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "the temporary server and the workers are gone"


def test_sigkill_of_sieve_leaves_no_process_behind(tmp_path: Path, prefect_home: Path) -> None:
    site = DemoSite(300)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url,
                              demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.03}})
        proc = _crawl(config, _env(PREFECT_HOME=str(prefect_home)))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and _articles_requested(server) < 30 and proc.poll() is None:
            time.sleep(0.02)
        children = psutil.Process(proc.pid).children(recursive=True)
        kinds = {"server": "uvicorn", "fork server": "forkserver", "resource tracker": "resource_tracker"}
        lines = [" ".join(child.cmdline()) for child in children]
        for name, marker in kinds.items():
            assert any(marker in line for line in lines), (name, lines)
        assert sum(1 for line in lines if "spawn_main" in line or "forkserver" in line) >= 2, lines
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        alive = children
        while alive and time.monotonic() < deadline:
            alive = [c for c in alive if _alive(c)]
            time.sleep(0.1)
    assert not alive, [" ".join(c.cmdline()) for c in alive if _alive(c)]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
