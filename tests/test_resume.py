"""A crawl killed with SIGKILL resumes where it stopped: nothing committed is lost, nothing is stored twice,
stored pages are not fetched again; the warehouse stays readable while a crawl writes to it."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from demo import DemoServer, DemoSite
from flows.config import load_config
from flows.pipeline import PipelineOptions, run_crawl
from tests.conftest import ROOT, write_config

# What the child crawl runs with (CRAWL_SCRIPT): small windows, so a kill loses little and the bound is tight.
OPTIONS = PipelineOptions(batch_size=10, extract_here=True, commit_rows=10, commit_seconds=0.2)

CRAWL_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from flows.config import load_config
    from flows.pipeline import PipelineOptions, run_crawl
    config = load_config(sys.argv[1])
    print("started", flush=True)
    asyncio.run(run_crawl(config, "demo", options=PipelineOptions(batch_size=10, extract_here=True, commit_rows=10,
                                                                  commit_seconds=0.2)))
    print("finished", flush=True)
    """
)


def _start_paced_crawl(tmp_path: Path, base_url: str) -> tuple[Path, subprocess.Popen]:
    """A crawl in another process, one request at a time with a small gap, so it lasts several seconds:
    long enough to be killed midway, or for readers to get in between its batches."""
    config_path = write_config(tmp_path, base_url,
                               demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.04}})
    proc = subprocess.Popen([sys.executable, "-c", CRAWL_SCRIPT, str(config_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return config_path, proc


def _paths(db: Path, sql: str) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {"/" + url.split("/", 3)[3] for (url,) in con.execute(sql).fetchall()}   # the path, as the server logs it


def _count(db: Path, sql: str) -> int:
    for _ in range(200):  # the writer holds the file only per batch: retry the lock briefly
        try:
            with duckdb.connect(str(db), read_only=True) as con:
                return con.execute(sql).fetchone()[0]
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower():
                raise
            time.sleep(0.05)
    raise AssertionError("warehouse stayed locked")


def test_sigkill_mid_crawl_then_resume(tmp_path: Path) -> None:
    site = DemoSite(150)
    with DemoServer(site) as server:
        config_path, proc = _start_paced_crawl(tmp_path, server.base_url)
        db = tmp_path / "sieve.duckdb"
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:   # watch the server, not the file: kill after ~half the articles
            if sum(1 for p, _ in list(server.requests) if p.startswith("/news/")) >= 70:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        stored_before = _count(db, "SELECT count(*) FROM articles")
        assert 10 <= stored_before < site.n_articles, "killed midway, after some batches were committed"
        requests_before = len(server.requests)

        committed = _paths(db, "SELECT url FROM fetches WHERE error IS NULL AND url LIKE '%/news/%'")
        fetched_before = {p for p, _ in server.requests if p.startswith("/news/")}
        counts = asyncio.run(run_crawl(load_config(config_path), "demo", options=OPTIONS))
        assert counts.articles_new == site.n_articles - stored_before
        assert _count(db, "SELECT count(*) FROM articles") == site.n_articles
        assert _count(db, "SELECT count(DISTINCT url) FROM articles") == site.n_articles
        assert _count(db, "SELECT count(*) FROM pages") == _count(db, "SELECT count(DISTINCT url) FROM pages")
        # an article whose fetch was committed before the kill is never fetched again ...
        after_resume = Counter(p for p, _ in server.requests[requests_before:] if p.startswith("/news/"))
        assert committed and not committed & set(after_resume), sorted(committed & set(after_resume))[:5]
        assert max(after_resume.values()) == 1
        # ... and what the kill lost is at most the open window: rows short of a commit, plus fetches in flight
        lost = fetched_before - committed
        assert len(lost) <= 4 * OPTIONS.commit_rows + 1, len(lost)
        runs = dict(Counter(status for (status,) in duckdb.connect(str(db), read_only=True)
                            .execute("SELECT status FROM crawl_runs").fetchall()))
        assert runs.get("completed") == 1 and runs.get("crashed") == 1  # the killed run is marked at the next start


def test_queries_succeed_while_a_crawl_writes(tmp_path: Path) -> None:
    site = DemoSite(150)
    with DemoServer(site) as server:
        config_path, proc = _start_paced_crawl(tmp_path, server.base_url)
        db = tmp_path / "sieve.duckdb"
        seen: list[int] = []
        failures: list[str] = []
        try:
            while proc.poll() is None:
                if db.exists():
                    cmd = subprocess.run(
                        [sys.executable, "-m", "flows.cli", "sql", "--format", "csv", "--config", str(config_path),
                         "SELECT count(*) FROM articles"],
                        capture_output=True, text=True, cwd=ROOT, timeout=60,
                    )
                    if cmd.returncode == 0:
                        seen.append(int(cmd.stdout.split()[1]))
                    elif "no warehouse" not in cmd.stderr and "does not exist" not in cmd.stderr:
                        failures.append(cmd.stderr)
                time.sleep(0.05)
        finally:
            proc.wait(timeout=120)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        assert not failures, failures[:2]
        assert len(seen) >= 3 and len(set(seen)) >= 2, seen   # readers got in while the crawl was writing
        assert seen == sorted(seen), "a reader never sees articles disappear"
        assert _count(db, "SELECT count(*) FROM articles") == site.n_articles


PAUSED_CRAWL = textwrap.dedent(
    """
    import asyncio, sys, time
    import warehouse.articles as articles
    from warehouse import Warehouse
    from flows.config import load_config
    from flows.pipeline import PipelineOptions, run_crawl

    record_extractions, record_window = articles.record_extractions, Warehouse.record_window
    calls = []

    def paused(con, arts, rejections):   # inside a window's transaction: written, not committed
        out = record_extractions(con, arts, rejections)
        calls.append(1)
        if len(calls) == int(sys.argv[2]):
            print("inside", flush=True)
            time.sleep(120)
        return out

    def reported(self, fetches, **kw):
        out = record_window(self, fetches, **kw)
        print("committed", len(fetches), len(kw.get("articles", ())), flush=True)
        return out

    articles.record_extractions, Warehouse.record_window = paused, reported
    options = PipelineOptions(batch_size=10, extract_here=True, commit_rows=10, commit_seconds=0.2)
    asyncio.run(run_crawl(load_config(sys.argv[1]), "demo", options=options))
    """
)


def test_sigkill_inside_a_window_commit_keeps_the_windows_before_it_whole_and_nothing_of_it(tmp_path: Path) -> None:
    site = DemoSite(80)
    with DemoServer(site) as server:
        config_path = write_config(tmp_path, server.base_url,
                                   demo_overrides={"crawl": {"per_host_concurrency": 2, "delay_seconds": 0.01}})
        proc = subprocess.Popen([sys.executable, "-c", PAUSED_CRAWL, str(config_path), "4"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fetches = articles = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("committed"):
                fetches += int(line.split()[1])
                articles += int(line.split()[2])
            if line.startswith("inside"):
                break
        else:
            pytest.fail(f"the crawl ended before pausing: {proc.stderr.read() if proc.stderr else ''}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        db = tmp_path / "sieve.duckdb"
        assert articles > 0
        # exactly the committed windows: nothing of the one being written when the process died
        assert _count(db, "SELECT count(*) FROM fetches") == fetches
        assert _count(db, "SELECT count(*) FROM articles") == articles
        committed = _paths(db, "SELECT url FROM fetches WHERE error IS NULL AND url LIKE '%/news/%'")
        requests_before = len(server.requests)

        summary = asyncio.run(run_crawl(load_config(config_path), "demo", options=OPTIONS))
        assert summary.articles_new == site.n_articles - articles
        assert _count(db, "SELECT count(*) FROM articles") == site.n_articles
        assert _count(db, "SELECT count(DISTINCT url) FROM articles") == site.n_articles
        again = {p for p, _ in server.requests[requests_before:] if p.startswith("/news/")}
        assert not committed & again, "a page committed before the kill was fetched again"
