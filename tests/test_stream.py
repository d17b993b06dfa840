"""The streaming pipeline's bounds and failures, without Prefect: real servers on 127.0.0.1, real DuckDB
files, real extraction worker processes.

- endless pagination stops at max_list_pages (and max_depth);
- a page past its CPU budget is a rejection `timeout` and its worker is replaced; a worker stuck where
  the budget cannot reach (here: stopped) is killed by wall time; a worker that dies costs one page;
- a plain duckdb process holding the file longer than one lock attempt: the writer waits, says who
  holds it, keeps the fetched work, then writes it all once.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from demo import DemoServer, DemoSite
from extractors.model import Rules
from flows.config import load_config
from flows.pipeline import PipelineOptions, run_crawl
from pipeline.extract import STILLBORN_LIMIT, ProcessExtraction
from pipeline.intake import Page
from tests.conftest import write_config
from tests.faultserver import FaultServer

RULES_FREE = {"rules": {}, "list_url_pattern": r"/pages/\d+\.html$", "article_url_pattern": r"/pages/a/"}
BODY = "".join(f"<p>这是第{i}段正文,讲一个人在小城市开店的经历和感受,内容足够长,足够成为文章。</p>" for i in range(12))
ARTICLE = f"<html><head><title>小城开店</title></head><body><article><h1>小城开店</h1>{BODY}</article></body></html>"
# A flat DOM of punctuated prose that the extractor needs seconds for (15k <p>: about 4 CPU s; the
# DOM caps in extractors/ only cut in above 20k elements, so this page really is slow).
HUGE = "<html><body><div>" + "<p>小城里开了一家店，生意很好。</p>" * 15_000 + "</div></body></html>"


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _fault_config(tmp_path: Path, server: FaultServer, **source: object) -> Path:
    return write_config(tmp_path, server.base_url, demo_overrides={
        **RULES_FREE, "start_urls": [server.url("/pages/1.html")], **source})


# ---- bounds on list pages --------------------------------------------------------------------------
def test_endless_pagination_stops_at_max_list_pages(tmp_path: Path, fault_server: FaultServer) -> None:
    fault_server.endless_pagination("/pages/", articles_per_page=3)
    config = _fault_config(tmp_path, fault_server, max_list_pages=25)
    started = time.monotonic()
    summary = asyncio.run(run_crawl(load_config(config), "demo", options=PipelineOptions(extract_here=True)))
    assert summary.status == "completed"
    list_hits = [p for p in fault_server.paths() if p.startswith("/pages/") and not p.startswith("/pages/a/")]
    assert sorted(list_hits) == sorted(f"/pages/{n}.html" for n in range(1, 26)), "each list page once, 25 of them"
    assert summary.articles_new == 25 * 3
    db = tmp_path / "sieve.duckdb"
    # page 26 is known (linked from page 25) and waits in the frontier for the next run
    assert _rows(db, "SELECT count(*) FROM frontier WHERE url LIKE '%/pages/26.html'") == [(1,)]
    assert time.monotonic() - started < 60
    # the next run re-checks the list pages it knows (the first ones first), bounded again
    before = len(fault_server.paths())
    asyncio.run(run_crawl(load_config(config), "demo", options=PipelineOptions(extract_here=True)))
    again = [p for p in fault_server.paths()[before:] if p.startswith("/pages/") and "/a/" not in p]
    assert len(again) == len(set(again)) == 25


def test_pagination_is_followed_at_most_max_depth_links(tmp_path: Path, fault_server: FaultServer) -> None:
    fault_server.endless_pagination("/pages/", articles_per_page=1)
    config = _fault_config(tmp_path, fault_server, max_depth=7)
    summary = asyncio.run(run_crawl(load_config(config), "demo", options=PipelineOptions(extract_here=True)))
    list_hits = {p for p in fault_server.paths() if p.startswith("/pages/") and "/a/" not in p}
    assert list_hits == {f"/pages/{n}.html" for n in range(1, 9)}, "the start page and 7 links deep"
    assert summary.articles_new == 8


# ---- extraction workers -----------------------------------------------------------------------------
def _rules():
    return load_config(Path(__file__).resolve().parent.parent / "config.yaml").sources["demo"].rules


async def _run_pages(pages: list[Page], *, during=None, **kwargs) -> tuple[dict[str, object], ProcessExtraction]:
    results: dict[str, object] = {}
    stage = ProcessExtraction(_rules(), lambda page, result: results.__setitem__(page.url, result), **kwargs)
    stage.start()
    try:
        for page in pages:
            await stage.submit(page)
        if during is not None:
            await during(stage)
        await asyncio.wait_for(stage.drain(), 120)
    finally:
        await stage.close()
    return results, stage


def _page(url: str, html: str) -> Page:
    return Page(url, html, datetime(2026, 1, 5, tzinfo=UTC))


def test_a_page_past_its_cpu_budget_is_a_timeout_and_its_worker_is_replaced() -> None:
    pages = [_page("http://x/huge.html", HUGE), _page("http://x/ok-1.html", ARTICLE), _page("http://x/ok-2.html", ARTICLE)]
    started = time.monotonic()
    results, stage = asyncio.run(_run_pages(pages, workers=1, budget_s=0.5, chunk_pages=3))
    huge = results["http://x/huge.html"]
    assert getattr(huge, "reason", None) == "timeout", huge
    assert "CPU budget of 0.5 s" in huge.detail
    # the pages queued behind it in the same chunk were extracted by the replacement worker
    assert all(type(results[f"http://x/ok-{n}.html"]).__name__ == "Article" for n in (1, 2))
    assert stage.timeouts == 1 and stage.replaced == 1
    assert time.monotonic() - started < 30


def test_a_worker_stuck_where_the_budget_cannot_reach_is_killed_by_wall_time() -> None:
    async def stop_the_worker(stage: ProcessExtraction) -> None:
        while not any(w.job for w in stage._live):
            await asyncio.sleep(0.01)
        os.kill(stage._live[0].process.pid, signal.SIGSTOP)   # uses no CPU: ITIMER_PROF never fires

    # a page that takes seconds, so the stop lands mid-page; stopped, it uses no CPU and the budget never fires
    pages = [_page("http://x/stuck.html", HUGE), _page("http://x/after.html", ARTICLE)]
    stage_kwargs = {"workers": 1, "budget_s": 30.0, "chunk_pages": 1}
    started = time.monotonic()

    async def run() -> tuple[dict[str, object], ProcessExtraction]:
        results: dict[str, object] = {}
        stage = ProcessExtraction(_rules(), lambda page, result: results.__setitem__(page.url, result), **stage_kwargs)
        stage.hard_s = 2.0
        stage.start()
        for page in pages:
            await stage.submit(page)
        await stop_the_worker(stage)
        await asyncio.wait_for(stage.drain(), 60)
        await stage.close()
        return results, stage

    results, stage = asyncio.run(run())
    stuck = results["http://x/stuck.html"]
    assert getattr(stuck, "reason", None) == "timeout" and "wall time" in stuck.detail, stuck
    assert type(results["http://x/after.html"]).__name__ == "Article"
    assert stage.replaced == 1 and time.monotonic() - started < 30


def test_a_worker_that_dies_costs_only_its_current_page() -> None:
    async def kill_the_worker(stage: ProcessExtraction) -> None:
        while not any(w.job for w in stage._live):
            await asyncio.sleep(0.005)
        os.kill(stage._live[0].process.pid, signal.SIGKILL)

    pages = [_page(f"http://x/{n}.html", ARTICLE) for n in range(6)]
    results, stage = asyncio.run(_run_pages(pages, during=kill_the_worker, workers=1, budget_s=30.0, chunk_pages=6))
    reasons = [getattr(results[p.url], "reason", "article") for p in pages]
    assert len(results) == 6, "every page has an outcome"
    assert reasons.count("internal_error") <= 1 and reasons.count("article") >= 5, reasons
    died = [r for r in results.values() if getattr(r, "reason", None) == "internal_error"]
    assert all("worker died" in r.detail for r in died)
    assert stage.replaced == 1


class _RulesNoWorkerCanLoad(Rules):
    """Unpickling it ends the worker (exit code 3) before it says hello: a broken install, every time."""

    def __reduce__(self):
        return (os._exit, (3,))


def test_workers_that_die_before_they_are_ready_fail_the_pages_instead_of_being_replaced_for_ever() -> None:
    async def run() -> tuple[dict[str, object], ProcessExtraction, list[str]]:
        results: dict[str, object] = {}
        rules = _RulesNoWorkerCanLoad.model_validate(_rules().model_dump())
        stage = ProcessExtraction(rules, lambda page, result: results.__setitem__(page.url, result), workers=2)
        stage.start()
        errors = []
        try:
            for n in range(4):
                await stage.submit(_page(f"http://x/{n}.html", ARTICLE))
            await asyncio.wait_for(stage.drain(), 60)
            try:
                await asyncio.wait_for(stage.known_versions(), 5)
            except RuntimeError as exc:
                errors.append(str(exc))
            await stage.submit(_page("http://x/after.html", ARTICLE))   # a page after the failure fails too
            await asyncio.wait_for(stage.drain(), 60)
        finally:
            await stage.close()
        return results, stage, errors

    results, stage, errors = asyncio.run(run())
    assert len(results) == 5, "every page has an outcome"
    for result in results.values():
        assert getattr(result, "reason", None) == "internal_error", result
        assert "3 extraction workers in a row died before they were ready (the last exited with code 3)" in result.detail
    assert errors and "died before they were ready" in errors[0]
    assert stage.stillborn >= STILLBORN_LIMIT and stage.replaced <= STILLBORN_LIMIT, "it stopped replacing them"


class _RulesThatHangAWorker(Rules):
    """Unpickling it blocks the worker before it says hello (like a script without a __main__ guard)."""

    def __reduce__(self):
        return (time.sleep, (60,))


def test_workers_that_never_get_ready_are_killed_and_then_the_pages_fail_with_the_hint() -> None:
    async def run() -> dict[str, object]:
        results: dict[str, object] = {}
        rules = _RulesThatHangAWorker.model_validate(_rules().model_dump())
        stage = ProcessExtraction(rules, lambda page, result: results.__setitem__(page.url, result), workers=1)
        stage.ready_s = 0.5
        stage.start()
        try:
            await stage.submit(_page("http://x/1.html", ARTICLE))
            await asyncio.wait_for(stage.drain(), 30)
        finally:
            await stage.close(cancel=True)
        return results

    began = time.monotonic()
    (result,) = asyncio.run(run()).values()
    assert getattr(result, "reason", None) == "internal_error"
    assert "was not ready within 0.5 s" in result.detail and "__main__" in result.detail, result.detail
    assert time.monotonic() - began < 30


def test_a_huge_page_in_a_crawl_is_a_timeout_row_and_the_rest_is_stored(tmp_path: Path, fault_server: FaultServer) -> None:
    links = "".join(f'<a href="/pages/a/{n}.html">文章 {n}</a>' for n in range(5))
    fault_server.page("/pages/1.html", f"<html><body>{links}</body></html>")
    for n in range(5):
        fault_server.page(f"/pages/a/{n}.html", HUGE if n == 2 else ARTICLE.replace("小城开店", f"小城开店{n}"))
    config = _fault_config(tmp_path, fault_server)
    options = PipelineOptions(extract_workers=1, extract_budget_s=0.5)
    summary = asyncio.run(run_crawl(load_config(config), "demo", options=options))
    assert summary.rejections["timeout"] == 1 and summary.articles_new == 4, summary
    db = tmp_path / "sieve.duckdb"
    assert _rows(db, "SELECT url, reason FROM extractions WHERE outcome = 'rejected'") == [
        (fault_server.url("/pages/a/2.html"), "timeout")]


# ---- a locked warehouse --------------------------------------------------------------------------------
HOLDER = """
import duckdb, sys, time
from pathlib import Path
db = sys.argv[1]
waiting = Path(db + ".waiting")
while True:   # the writer lets go when asked (that is how `sieve sql` gets in): ask, then take the file
    try:
        con = duckdb.connect(db)
        break
    except duckdb.IOException:
        waiting.touch()
        time.sleep(0.005)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
print("released", flush=True)
"""


def test_a_long_held_lock_makes_the_writer_wait_and_keep_the_fetched_work(tmp_path: Path, caplog) -> None:
    site = DemoSite(200)   # paced: the crawl lasts well past the moment the other process takes the file
    hold_s = 4.0
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url,
                              demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.03}})
        db = tmp_path / "sieve.duckdb"
        options = PipelineOptions(extract_here=True, lock_wait_s=0.5, commit_rows=20, commit_seconds=0.3)
        holder: list[subprocess.Popen] = []

        async def crawl_and_grab() -> object:
            task = asyncio.ensure_future(run_crawl(load_config(config), "demo", options=options))
            while sum(1 for p, _ in list(server.requests) if p.startswith("/news/")) < 20:
                await asyncio.sleep(0.02)
            holder.append(subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(hold_s)],
                                           stdout=subprocess.PIPE, text=True))
            return await task

        with caplog.at_level(logging.WARNING, logger="sieve.pipeline"):
            summary = asyncio.run(crawl_and_grab())
        out, _ = holder[0].communicate(timeout=30)
    assert out.split() == ["held", "released"]
    waits = [r.getMessage() for r in caplog.records if "keeping the work" in r.getMessage()]
    assert waits, "the writer said it was waiting"
    assert any(f"process {holder[0].pid}" in message for message in waits), waits[:3]
    assert summary.status == "completed" and summary.articles_new == site.n_articles
    assert _rows(db, "SELECT count(*), count(DISTINCT url) FROM articles") == [(site.n_articles, site.n_articles)]
    fetched = _rows(db, "SELECT count(*), count(DISTINCT url) FROM fetches WHERE url LIKE '%/news/%'")[0]
    assert fetched[0] == fetched[1], "no fetch stored twice"
    article_hits = [p for p, _ in server.requests if p.startswith("/news/") and "/20230430/" not in p]
    assert len(article_hits) == len(set(article_hits)), "nothing fetched twice: the waiting window was kept"


def test_while_the_file_is_held_fetching_stops_at_twice_commit_rows_uncommitted(tmp_path: Path) -> None:
    """The writer's memory bound, end to end: a backfill of given URLs needs no commit to know what to
    fetch next, so only the back-pressure stops it while another process holds the file. Then every
    fetch adds a row, and at most 2 x commit_rows rows wait (plus the one fetch in flight); unbounded,
    this paced backfill would fetch about 90 pages while the file is held. Once released, all is stored."""
    from flows.pipeline import backfill_plan

    site = DemoSite(200)
    hold_s = 4.0
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url,
                              demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.03}})
        db = tmp_path / "sieve.duckdb"
        options = PipelineOptions(extract_here=True, lock_wait_s=0.5, commit_rows=10, commit_seconds=0.3)
        urls = [server.base_url + article.path for article in site.articles()]

        def articles_requested() -> int:
            return sum(1 for p, _ in list(server.requests) if p.startswith("/news/"))

        async def backfill_and_grab() -> tuple[object, int, str]:
            plan = backfill_plan(load_config(config), "demo", urls=urls, options=options)
            task = asyncio.ensure_future(plan.run())
            while articles_requested() < 20:
                await asyncio.sleep(0.02)
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(hold_s)],
                                      stdout=subprocess.PIPE, text=True)
            assert holder.stdout is not None
            assert (await asyncio.to_thread(holder.stdout.readline)).strip() == "held"
            before = articles_requested()
            await asyncio.sleep(hold_s - 1.0)   # still held: nothing can commit meanwhile
            while_held = articles_requested() - before
            summary = await task
            out, _ = holder.communicate(timeout=30)
            return summary, while_held, out

        summary, while_held, out = asyncio.run(backfill_and_grab())
    assert out.split() == ["released"]
    assert while_held <= 2 * options.commit_rows + 1, while_held
    assert summary.status == "completed" and summary.articles_new == site.n_articles
    assert _rows(db, "SELECT count(*), count(DISTINCT url) FROM articles") == [(site.n_articles, site.n_articles)]


# ---- bugs and terminal errors are not retried -------------------------------------------------------
def test_a_bug_on_one_page_is_an_internal_error_row_with_its_traceback(tmp_path: Path, demo_server, caplog,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.fetch

    discover = pipeline.fetch.discover

    def broken_on_page_2(text, base_url, *args):
        if base_url.endswith("/list/2.html"):
            raise KeyError("a bug in link discovery")
        return discover(text, base_url, *args)

    monkeypatch.setattr(pipeline.fetch, "discover", broken_on_page_2)
    config = write_config(tmp_path, demo_server.base_url)
    with caplog.at_level(logging.ERROR, logger="sieve.pipeline"):
        summary = asyncio.run(run_crawl(load_config(config), "demo", options=PipelineOptions(extract_here=True)))
    assert summary.status == "completed" and summary.failures["internal_error"] == 1
    assert _rows(tmp_path / "sieve.duckdb", "SELECT url, error FROM fetches WHERE error = 'internal_error'") == [
        (demo_server.base_url + "/list/2.html", "internal_error")]
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "logged with its traceback"
    assert summary.articles_new > 0, "the rest of the crawl went on"


def test_a_warehouse_from_a_newer_sieve_fails_the_run_at_once(tmp_path: Path, demo_server) -> None:
    from warehouse import LATEST_VERSION, SchemaTooNew, Warehouse

    config = write_config(tmp_path, demo_server.base_url)
    db = tmp_path / "sieve.duckdb"
    Warehouse(db).migrate()
    Warehouse(db).release()
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', now())", [LATEST_VERSION + 1])
    started = time.monotonic()
    with pytest.raises(SchemaTooNew):
        asyncio.run(run_crawl(load_config(config), "demo", options=PipelineOptions(extract_here=True)))
    assert time.monotonic() - started < 10, "not retried as if the file were busy"
    assert not demo_server.requests, "nothing fetched"


# ---- the writer's windows ---------------------------------------------------------------------------------
def test_windows_commit_by_rows_or_seconds_and_count_only_once_committed(tmp_path: Path) -> None:
    from datetime import timedelta

    from outcomes import TransientError
    from pipeline.summary import RunSummary
    from pipeline.write import Writer
    from tests.test_warehouse_support import fetch
    from warehouse import Warehouse

    warehouse = Warehouse(tmp_path / "w.duckdb")
    summary = RunSummary()
    gate = asyncio.Event()
    committed: list[tuple[int, float]] = []
    failures = [1]

    async def commit(window):
        await gate.wait()
        if failures:            # the first attempt meets a locked file
            failures.pop()
            raise TransientError("warehouse_busy", "process 4242 holds it")
        result = await window.commit()
        committed.append((window.rows, time.monotonic()))
        return result

    async def run() -> None:
        writer = Writer(warehouse, summary, revisit_after=timedelta(days=1), commit_rows=5, commit_seconds=0.4,
                        commit=commit)
        task = asyncio.ensure_future(writer.run())
        for n in range(8):       # a full window (5 rows) goes at once; 3 more wait in the next one
            writer.add_fetch(fetch(f"https://demo.example/{n}.html"), [], "fetched")
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert summary.fetched == 0 and writer.pending == 8, "nothing counts before its commit"
        gate.set()
        while summary.fetched < 8:
            await asyncio.sleep(0.01)
        sizes = [rows for rows, _ in committed]
        assert len(sizes) == 2 and sizes[0] >= 5 and sum(sizes) == 8, sizes   # the full one went first
        assert summary.fetched == 8 and summary.windows == 2, "the retried window counted once"
        started = time.monotonic()     # a lone row commits once its window is commit_seconds old
        writer.add_fetch(fetch("https://demo.example/late.html"), [], "fetched")
        while summary.fetched < 9:
            await asyncio.sleep(0.01)
        assert 0.4 <= committed[-1][1] - started < 2.0
        await writer.close()
        await task

    asyncio.run(run())
    assert warehouse.query("SELECT count(*) FROM fetches").rows == [(9,)]


def test_producers_wait_once_a_full_window_waits_behind_one_committing(tmp_path: Path) -> None:
    """The memory bound while the file is locked: at most 2 x commit_rows rows wait (a full window and the
    one stuck committing); `room()` then holds the fetchers until that commit is through."""
    from datetime import timedelta

    from pipeline.summary import RunSummary
    from pipeline.write import Writer
    from tests.test_warehouse_support import fetch
    from warehouse import Warehouse

    gate = asyncio.Event()

    async def commit(window):   # a commit held up, as by another process holding the file
        await gate.wait()
        return await window.commit()

    async def run() -> None:
        writer = Writer(Warehouse(tmp_path / "w.duckdb"), RunSummary(), revisit_after=timedelta(days=1),
                        commit_rows=5, commit_seconds=60, commit=commit)
        task = asyncio.ensure_future(writer.run())
        admitted = 0

        async def fetcher() -> None:
            nonlocal admitted
            for n in range(30):
                await writer.room()
                writer.add_fetch(fetch(f"https://demo.example/{n}.html"), [], "fetched")
                admitted += 1
                await asyncio.sleep(0)

        producing = asyncio.ensure_future(fetcher())
        await asyncio.sleep(0.3)
        assert writer.pending_cap == 10 and admitted == 10 and writer.pending == 10, (admitted, writer.pending)
        gate.set()
        await asyncio.wait_for(producing, 10)
        assert admitted == 30
        await writer.close()
        await task

    asyncio.run(run())


def test_a_run_never_sleeps_out_a_window_when_nothing_is_in_flight(tmp_path: Path, demo_server,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """When the last fetch or extraction in flight ends, the frontier looks again at once and has the writer
    commit what is left: no worker waits out its one-second timeout for news, at the end of the run or
    whenever the run runs dry (with long windows, a run that relied on timers would stall many times)."""
    from pipeline.run import Pipeline

    frontiers = []
    make = Pipeline._frontier

    def kept(self, **kwargs):
        frontiers.append(make(self, **kwargs))
        return frontiers[-1]

    monkeypatch.setattr(Pipeline, "_frontier", kept)
    config = write_config(tmp_path, demo_server.base_url)
    summary = asyncio.run(run_crawl(load_config(config), "demo", options=PipelineOptions(commit_seconds=30.0)))
    assert summary.status == "completed" and summary.articles_new > 0
    assert [f.stalls for f in frontiers] == [0]
    assert summary.duration_s < 30, "no window waited out its 30 s"
