"""`crawl_runs`: one row per flow run, and what becomes of runs whose process died.

A run records the pid and host of the process running it, and a heartbeat (`heartbeat_at`, touched by
`Warehouse.heartbeat` and by every `record_fetches` of the run's rows). A killed process cannot say it
stopped, so at the next run start (or `Warehouse.mark_crashed_runs`) a `running` row is marked
`crashed` when:
- it was started on this host and its pid is gone, or now belongs to a process started after the run
  (the pid was reused);
- it was started on another host (whose processes we cannot see) and its heartbeat is older than
  `stale_after`; a row from before pids were recorded, by its start time.
Its `finished_at` is then the last sign of life (heartbeat, else start).
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime, timedelta

import duckdb

from outcomes import RUN_STATUSES

from .errors import SourceBusy

FINAL_STATUSES: tuple[str, ...] = tuple(s for s in RUN_STATUSES if s != "running")
# Runs that fetch a source: at most one of them holds a source at a time (`start_run(exclusive=True)`).
FETCHING_KINDS: tuple[str, ...] = ("crawl", "backfill")
STALE_AFTER = timedelta(hours=1)


def host_name() -> str:
    return socket.gethostname()


def process_alive(pid: int, since: datetime) -> bool:
    """Is `pid` a live process that existed at `since` (not a later one that reused the number)?"""
    import psutil  # imported here: `sieve sql` and friends never need it

    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # exists, but not ours to inspect
        return True
    return created <= since.timestamp() + 1.0


def start_run(con: duckdb.DuckDBPyConnection, kind: str, source_id: str | None, params: dict, now: datetime) -> str:
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    con.execute(
        "INSERT INTO crawl_runs (run_id, kind, source_id, params, status, started_at, pid, host, heartbeat_at) "
        "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)",
        [
            run_id,
            kind,
            source_id,
            json.dumps(params, default=str, ensure_ascii=False),
            now,
            os.getpid(),
            host_name(),
            now,
        ],
    )
    return run_id


def refuse_if_held(con: duckdb.DuckDBPyConnection, kind: str, source_id: str, now: datetime) -> None:
    """SourceBusy when a running crawl or backfill of the source exists (call after `mark_crashed`, in the
    transaction that inserts the new run), or when a fleet's claims on it are open (their workers may be
    fetching even if the dispatcher died). Two runs fetching one source would fetch its pages twice and,
    each with its own politeness, exceed the per-host limits together."""
    if kind not in FETCHING_KINDS:
        return
    rows = con.execute(
        "SELECT run_id, kind, pid, host, started_at, heartbeat_at FROM crawl_runs "
        "WHERE status = 'running' AND source_id = ? AND list_contains(?, kind) ORDER BY started_at LIMIT 1",
        [source_id, list(FETCHING_KINDS)],
    ).fetchall()
    if rows:
        run_id, held_kind, pid, host, started_at, heartbeat_at = rows[0]
        seen = f", last sign of life {heartbeat_at:%H:%M:%S} UTC" if heartbeat_at else ""
        where = f", process {pid} on {host}" if pid is not None else ""
        raise SourceBusy(
            f"source {source_id!r} is being fetched by run {run_id} ({held_kind}, started {started_at:%Y-%m-%d %H:%M:%S} "
            f"UTC{seen}{where}): this {kind} did not start and fetched nothing. Wait for that run to end, or stop "
            "its process (a run whose process died is marked crashed at the next start).",
            run_id,
        )
    claim = con.execute(
        "SELECT run_id, count(*), max(lease_until) FROM claims WHERE status = 'open' AND source_id = ? "
        "AND lease_until > ? GROUP BY run_id ORDER BY 3 DESC LIMIT 1",
        [source_id, now],
    ).fetchall()
    if claim:
        run_id, n, until = claim[0]
        raise SourceBusy(
            f"source {source_id!r} has {n} open fleet claims of run {run_id} (workers may still be fetching it, "
            f"leases until {until:%Y-%m-%d %H:%M:%S} UTC): this {kind} did not start and fetched nothing. "
            "Wait for the claims to close or their leases to end.",
            run_id,
        )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, counts: dict[str, int], error: str | None, now: datetime
) -> bool:
    """Close a run; False when there is no such run. Refuses a status outcomes does not name as final."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"run status {status!r} is not one of {', '.join(FINAL_STATUSES)}")
    return bool(
        con.execute(
            "UPDATE crawl_runs SET status = ?, counts = ?, error = ?, finished_at = ? WHERE run_id = ?",
            [status, json.dumps(counts, default=str, ensure_ascii=False), error, now, run_id],
        ).fetchall()[0][0]
    )


def heartbeat(con: duckdb.DuckDBPyConnection, run_ids: list[str], now: datetime) -> int:
    """Touch the heartbeat of these runs (those still running). Returns how many were touched."""
    if not run_ids:
        return 0
    return int(
        con.execute(
            "UPDATE crawl_runs SET heartbeat_at = $now WHERE status = 'running' AND list_contains($ids, run_id)",
            {"now": now, "ids": run_ids},
        ).fetchall()[0][0]
    )


def mark_crashed(con: duckdb.DuckDBPyConnection, now: datetime, stale_after: timedelta = STALE_AFTER) -> list[str]:
    """Mark `crashed` every running run whose process is gone (rules in the module docstring)."""
    here = host_name()
    crashed = []
    for run_id, pid, host, started_at, heartbeat_at in con.execute(
        "SELECT run_id, pid, host, started_at, heartbeat_at FROM crawl_runs WHERE status = 'running'"
    ).fetchall():
        last_seen = heartbeat_at or started_at
        if pid is not None and host == here:
            gone = not process_alive(pid, started_at)
        else:
            gone = now - last_seen > stale_after
        if gone:
            crashed.append(run_id)
            where = f"process {pid} on {host}" if pid is not None else "a process of an older sieve"
            con.execute(
                "UPDATE crawl_runs SET status = 'crashed', finished_at = ?, error = ? WHERE run_id = ?",
                [
                    last_seen,
                    f"{where} stopped without closing the run (last sign of life {last_seen:%Y-%m-%d %H:%M:%S} UTC)",
                    run_id,
                ],
            )
    return crashed
