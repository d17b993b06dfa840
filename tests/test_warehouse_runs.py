"""crawl_runs: who runs a run, its heartbeat, runs whose process died marked `crashed`, final statuses only."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psutil
import pytest

import outcomes
import warehouse
from warehouse import Warehouse
from warehouse.runs import FINAL_STATUSES

from .test_warehouse_support import fetch, plain_connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "w.duckdb")


def _run(wh: Warehouse, run_id: str) -> dict:
    result = wh.query("SELECT * FROM crawl_runs WHERE run_id = ?", [run_id])
    return dict(zip(result.columns, result.rows[0], strict=True))


def _set(wh: Warehouse, run_id: str, **values) -> None:
    con = plain_connect(wh.path, read_only=False)
    try:
        for column, value in values.items():
            con.execute(f"UPDATE crawl_runs SET {column} = ? WHERE run_id = ?", [value, run_id])
    finally:
        con.close()


def test_a_run_records_its_process_and_heartbeat(wh) -> None:
    run_id = wh.start_run("crawl", "demo", {"max_pages": 3})
    row = _run(wh, run_id)
    assert (row["status"], row["pid"], row["host"]) == ("running", os.getpid(), socket.gethostname())
    assert row["heartbeat_at"] == row["started_at"]
    assert wh.heartbeat(run_id) is True
    beat = _run(wh, run_id)["heartbeat_at"]
    assert beat > row["started_at"]
    wh.record_fetches([fetch("https://d/a/1", run_id=run_id)], revisit_after=timedelta(days=1))
    assert _run(wh, run_id)["heartbeat_at"] > beat                      # each commit window is a sign of life
    wh.finish_run(run_id, "completed", {"fetched": 1})
    assert wh.heartbeat(run_id) is False                                # a finished run has no heartbeat
    assert wh.heartbeat("no-such-run") is False


def test_a_run_whose_process_died_is_marked_crashed_at_the_next_start(wh) -> None:
    code = ("import sys, os; from warehouse import Warehouse; w = Warehouse(sys.argv[1]); "
            "print(w.start_run('crawl', 'demo', {}), flush=True); os._exit(9)")   # no finish_run: a kill
    done = subprocess.run([sys.executable, "-c", code, str(wh.path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    dead_run = done.stdout.strip()
    assert done.returncode == 9 and _run(wh, dead_run)["status"] == "running"
    _set(wh, dead_run, heartbeat_at=datetime.now(UTC) - timedelta(seconds=30))
    mine = wh.start_run("crawl", "demo", {})                            # the next start notices
    row = _run(wh, dead_run)
    assert row["status"] == "crashed" and row["finished_at"] == row["heartbeat_at"]
    assert f"process {row['pid']} on {socket.gethostname()}" in row["error"]
    assert _run(wh, mine)["status"] == "running"                        # this process is alive: left alone
    assert wh.mark_crashed_runs() == []


def test_a_reused_pid_does_not_keep_a_dead_run_alive(wh) -> None:
    run_id = wh.start_run("crawl", "demo", {})
    born = datetime.fromtimestamp(psutil.Process().create_time(), UTC)
    _set(wh, run_id, started_at=born - timedelta(days=1))               # our pid, but we started after the run
    assert wh.mark_crashed_runs() == [run_id]


def test_runs_of_other_hosts_and_of_older_sieves_go_by_age(wh) -> None:
    now = datetime.now(UTC)
    fresh, stale, legacy = (wh.start_run("crawl", "demo", {}) for _ in range(3))
    _set(wh, fresh, host="elsewhere", heartbeat_at=now - timedelta(minutes=5))
    _set(wh, stale, host="elsewhere", heartbeat_at=now - timedelta(hours=2))
    _set(wh, legacy, pid=None, host=None, heartbeat_at=None, started_at=now - timedelta(hours=3))
    assert sorted(wh.mark_crashed_runs()) == sorted([stale, legacy])
    assert _run(wh, fresh)["status"] == "running"
    assert wh.mark_crashed_runs(stale_after=timedelta(minutes=1)) == [fresh]


def test_finish_run_takes_only_final_statuses(wh) -> None:
    assert warehouse.RUN_STATUSES is outcomes.RUN_STATUSES
    assert set(FINAL_STATUSES) == set(outcomes.RUN_STATUSES) - {"running"}
    for status in FINAL_STATUSES:
        run_id = wh.start_run("crawl", "demo", {})
        wh.finish_run(run_id, status, {})
        assert _run(wh, run_id)["status"] == status
    run_id = wh.start_run("crawl", "demo", {})
    for bad in ("running", "done", "COMPLETED", ""):
        with pytest.raises(ValueError, match="not one of completed, failed, cancelled, crashed"):
            wh.finish_run(run_id, bad, {})
    assert _run(wh, run_id)["status"] == "running"
