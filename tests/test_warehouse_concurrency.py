"""Other processes: a writer running while this process queries, a writer killed mid-batch, a held lock."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from warehouse import Warehouse, WarehouseBusy

from .test_warehouse_support import T0, article, dump, fetch, frontier_row

ROOT = Path(__file__).resolve().parent.parent

_PRELUDE = """
import sys, time
from datetime import timedelta
sys.path.insert(0, {root!r})
from warehouse import Warehouse
from tests.test_warehouse_support import T0, article, fetch, frontier_row

def fetch_batch(i, n):
    at = T0 + timedelta(minutes=i)
    rows = [fetch(f"https://demo.example/b{{i}}/{{j}}", run_id=f"b{{i}}", fetched_at=at,
                  html=f"<html>{{i}}-{{j}}" + "正文" * 500 + "</html>") for j in range(n)]
    found = [frontier_row(f"https://demo.example/b{{i}}/new/{{j}}") for j in range(n)]
    return rows, found
"""


# Per batch id: fetch rows, pages and discovered frontier rows (URLs look like https://demo.example/b7/...).
_PER_BATCH_COUNTS = """
WITH f AS (SELECT run_id AS b, count(*) AS n FROM fetches GROUP BY 1),
     p AS (SELECT split_part(url, '/', 4) AS b, count(*) AS n FROM pages GROUP BY 1),
     r AS (SELECT split_part(url, '/', 4) AS b, count(*) AS n FROM frontier WHERE url LIKE '%/new/%' GROUP BY 1)
SELECT b, coalesce(f.n, 0), coalesce(p.n, 0), coalesce(r.n, 0)
FROM f FULL OUTER JOIN p USING (b) FULL OUTER JOIN r USING (b)
"""


def _child(tmp_path: Path, body: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(_PRELUDE.format(root=str(ROOT)) + textwrap.dedent(body), encoding="utf-8")
    return subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("hold_s", [0.0, 5.0], ids=["open-per-batch", "lease-yields-when-asked"])
def test_queries_during_a_crawl_in_another_process_never_see_half_a_batch(tmp_path, hold_s) -> None:
    path = tmp_path / "w.duckdb"
    batches, per_batch = 10, 40
    Warehouse(path).migrate()
    writer = _child(tmp_path, f"""
        wh = Warehouse({str(path)!r}, hold_s={hold_s})   # 5 s: only the reader's request frees the file
        for i in range({batches}):
            rows, found = fetch_batch(i, {per_batch})
            wh.record_fetches(rows, revisit_after=timedelta(days=1), discovered=found)
            time.sleep(0.05)                     # a crawl fetches between batches
        print("done", flush=True)
    """)
    reader = Warehouse(path, lock_timeout_s=30)
    seen_states: set[int] = set()
    queries = 0
    try:
        while True:
            finished = writer.poll() is not None
            rows = reader.query(_PER_BATCH_COUNTS).rows
            queries += 1
            for run_id, fetched, pages, discovered in rows:
                assert (fetched, pages, discovered) == (per_batch, per_batch, per_batch), run_id
            seen_states.add(len(rows))
            if finished:
                break
            time.sleep(0.02)
    finally:
        if writer.poll() is None:
            writer.kill()
        out, err = writer.communicate(timeout=30)
    assert writer.returncode == 0, err
    assert "done" in out
    assert max(seen_states) == batches
    assert len([s for s in seen_states if 0 < s < batches]) >= 2, (queries, sorted(seen_states))


def _kill_mid_batch(tmp_path: Path, path: Path, patch: str, work: str) -> tuple[int, subprocess.Popen]:
    """Run `work` in a child where `patch` pauses inside the 4th batch's transaction; SIGKILL it there."""
    child = _child(tmp_path, patch + work)
    committed = 0
    for line in child.stdout:
        if line.startswith("committed"):
            committed += 1
        if line.startswith("inside"):
            break
    else:
        child.wait(timeout=30)
        pytest.fail(f"child ended before pausing: {child.stderr.read()}")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return committed, child


def test_sigkill_inside_record_fetches_loses_nothing_committed_and_keeps_no_partial_batch(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    per_batch = 300
    patch = """
        import warehouse.frontier as frontier
        original = frontier.update_after_fetches
        calls = []
        def paused(con, rows, *args, **kw):
            original(con, rows, *args, **kw)     # fetches, pages and frontier are written, not committed
            calls.append(1)
            if len(calls) == 4:
                print("inside", flush=True)
                time.sleep(60)
        frontier.update_after_fetches = paused
    """
    work = f"""
        wh = Warehouse({str(path)!r})
        for i in range(10):
            rows, found = fetch_batch(i, {per_batch})
            wh.record_fetches(rows, revisit_after=timedelta(days=1), discovered=found)
            print("committed", i, flush=True)
    """
    committed, _ = _kill_mid_batch(tmp_path, path, patch, work)
    assert committed == 3

    wh = Warehouse(path)
    counts = wh.query("SELECT (SELECT count(*) FROM fetches), (SELECT count(*) FROM pages), "
                      "(SELECT count(*) FROM frontier), (SELECT count(DISTINCT run_id) FROM fetches)").rows[0]
    assert counts == (3 * per_batch, 3 * per_batch, 6 * per_batch, 3)
    assert wh.query("SELECT count(*) FROM fetches WHERE run_id = 'b3'").rows == [(0,)]

    # The next run goes on from there: the interrupted batch is written whole, once.
    rows, found = _fetch_batch_here(3, per_batch)
    wh.record_fetches(rows, revisit_after=timedelta(days=1), discovered=found)
    assert wh.query("SELECT count(*) FROM fetches WHERE run_id = 'b3'").rows == [(per_batch,)]
    assert wh.query("SELECT count(*) FROM pages").rows == [(4 * per_batch,)]


def _fetch_batch_here(i: int, n: int):
    """The same batch the child writes (see _PRELUDE)."""
    at = T0 + timedelta(minutes=i)
    rows = [fetch(f"https://demo.example/b{i}/{j}", run_id=f"b{i}", fetched_at=at,
                  html=f"<html>{i}-{j}" + "正文" * 500 + "</html>") for j in range(n)]
    return rows, [frontier_row(f"https://demo.example/b{i}/new/{j}") for j in range(n)]


def test_sigkill_inside_record_extractions_leaves_committed_batches_only(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    per_batch = 500
    patch = """
        import warehouse.articles as articles
        original = articles._write_articles
        calls = []
        def paused(con, *args):
            original(con, *args)                 # articles inserted, not committed
            calls.append(1)
            if len(calls) == 4:
                print("inside", flush=True)
                time.sleep(60)
        articles._write_articles = paused
    """
    work = f"""
        wh = Warehouse({str(path)!r})
        for i in range(10):
            wh.record_extractions([article(i * {per_batch} + j) for j in range({per_batch})], [])
            print("committed", i, flush=True)
    """
    committed, _ = _kill_mid_batch(tmp_path, path, patch, work)
    assert committed == 3
    before = dump(path)
    assert len(before["articles"]) == 3 * per_batch and len(before["extractions"]) == 3 * per_batch

    wh = Warehouse(path)
    counts = wh.record_extractions([article(3 * per_batch + j) for j in range(per_batch)], [])
    assert counts.new == per_batch
    assert wh.query("SELECT count(*), count(DISTINCT article_id) FROM articles").rows == [(4 * per_batch,) * 2]


def test_a_held_lock_makes_query_wait_then_give_up_clearly(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).migrate()
    Warehouse(path).release()                    # a plain duckdb process does not ask the writer to let go
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
                               "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        wh = Warehouse(path, lock_timeout_s=0.4)
        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match=rf"process {holder.pid} has held it for 0.4s"):
            wh.query("SELECT 1")
        assert 0.4 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    assert Warehouse(path).query("SELECT 1").rows == [(1,)]


def test_a_thread_holding_the_file_makes_query_give_up_too(tmp_path) -> None:
    import threading

    from warehouse.connection import path_lock

    wh = Warehouse(tmp_path / "w.duckdb", lock_timeout_s=0.2)
    wh.migrate()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with path_lock(wh.path):          # what a long write in another thread does
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(WarehouseBusy, match="busy in this process"):
            wh.query("SELECT 1")
    finally:
        release.set()
        thread.join()
    assert wh.query("SELECT 1").rows == [(1,)]


STORED_NOT_EXTRACTED = textwrap.dedent(
    """
    import asyncio, sys, time
    import pipeline.extract_worker as worker
    from warehouse import Warehouse
    from flows.config import load_config
    from flows.pipeline import PipelineOptions, run_crawl

    def stuck(pages, rules):   # the fixed pause point: pages are stored, their extraction never returns
        print("extracting", flush=True)
        time.sleep(120)

    record_window = Warehouse.record_window

    def reported(self, fetches, **kw):
        out = record_window(self, fetches, **kw)
        pages = sum(1 for f in fetches if f.html is not None)
        print("committed", pages, len(kw.get("articles", ())), flush=True)
        return out

    worker.extract_chunk, Warehouse.record_window = stuck, reported
    options = PipelineOptions(batch_size=10, extract_here=True, commit_rows=5, commit_seconds=0.1)
    asyncio.run(run_crawl(load_config(sys.argv[1]), "demo", options=options))
    """
)


def test_a_crawl_extracts_the_pages_a_crashed_run_stored_but_never_extracted(tmp_path) -> None:
    """Deterministic: the child stores pages while its extraction never returns, then dies by SIGKILL.
    The next crawl must extract those pages from the warehouse (they are not due: it must not refetch)."""
    import asyncio

    from demo import DemoServer, DemoSite
    from flows.config import load_config
    from flows.pipeline import PipelineOptions, run_crawl
    from tests.conftest import write_config

    site = DemoSite(30)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        child = subprocess.Popen([sys.executable, "-c", STORED_NOT_EXTRACTED, str(config)], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stored = 0
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("committed"):
                _, pages, articles = line.split()
                assert articles == "0"
                stored += int(pages)
                if stored >= 5:
                    break
        else:
            pytest.fail(f"child ended first: {child.stderr.read() if child.stderr else ''}")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        wh = Warehouse(tmp_path / "sieve.duckdb")
        left = {url for (url,) in wh.query("SELECT url FROM pages WHERE kind = 'article'").rows}
        assert len(left) >= 5 and wh.query("SELECT count(*) FROM articles").rows == [(0,)]
        wh.release()
        requests_before = len(server.requests)

        summary = asyncio.run(run_crawl(load_config(config), "demo", options=PipelineOptions(extract_here=True)))
        refetched = {path for path, _ in server.requests[requests_before:] if path.startswith("/news/")}
    assert summary.reextracted == len(left), "the stored pages were extracted from the warehouse"
    assert summary.articles_new == site.n_articles
    assert not {url.split("/", 3)[3] for url in left} & {p.lstrip("/") for p in refetched}, "and not fetched again"
    stored_urls = {url for (url,) in Warehouse(tmp_path / "sieve.duckdb").query("SELECT url FROM articles").rows}
    assert left <= stored_urls
