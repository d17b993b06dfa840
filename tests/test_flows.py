"""Backfill and re-extraction flows under a real (temporary) Prefect server, and the CLI's exit codes."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import yaml

from demo import DemoServer, DemoSite
from tests.conftest import ROOT, write_config


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_backfill_urls_list_pages_and_window(tmp_path: Path, prefect_harness) -> None:
    from flows.crawl import backfill

    site = DemoSite(60)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        urls = [server.base_url + site.article_path(n) + "?utm_source=x" for n in (1, 2, 3)]
        summary = asyncio.run(backfill(source="demo", urls=urls, config_path=str(config)))
        assert summary["articles_new"] == 3
        # a list page: its articles are fetched, and nothing else (no walk from the start URLs)
        summary = asyncio.run(backfill(source="demo", list_pages=[server.base_url + "/list/3.html"], config_path=str(config)))
        assert summary["articles_new"] == 10
        fetched = {p for p, _ in server.requests if p.startswith("/list/")}
        assert fetched == {"/list/3.html"}
        # a window keeps only articles published inside it (numbers 41..50 are on list page 5)
        window = [a for a in (site.article(n) for n in range(41, 51))
                  if a.published_at and date(2023, 5, 1) <= a.published_at.date() < date(2023, 6, 1)]
        summary = asyncio.run(backfill(source="demo", list_pages=[server.base_url + "/list/5.html"],
                                       since=date(2023, 5, 1), until=date(2023, 6, 1), config_path=str(config)))
        assert summary["articles_new"] == len(window) > 0
        assert summary["rejected"] == 10 - len(window)
    db = tmp_path / "sieve.duckdb"
    assert _rows(db, "SELECT count(*) FROM articles")[0][0] == 13 + len(window)
    runs = _rows(db, "SELECT kind, status FROM crawl_runs")
    assert runs == [("backfill", "completed")] * 3


def test_reextract_redoes_only_stale_pages_without_network(tmp_path: Path, prefect_harness) -> None:
    from flows.crawl import crawl, reextract

    site = DemoSite(24)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        asyncio.run(crawl(source="demo", config_path=str(config)))
        requests = len(server.requests)
    # the server is gone: re-extraction must not need it
    assert asyncio.run(reextract(source="demo", config_path=str(config)))["demo"]["reextracted"] == 0  # nothing stale
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sources"]["demo"]["rules"]["drop_lines"] = ["^以上,欢迎交流。$"]       # a rule change
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    summary = asyncio.run(reextract(source="demo", config_path=str(config)))["demo"]
    assert summary["reextracted"] == site.n_articles and summary["extracted"] == 0   # from storage, not fetched
    assert summary["articles_updated"] == site.n_articles
    db = tmp_path / "sieve.duckdb"
    texts = [t for (t,) in _rows(db, "SELECT text FROM articles")]
    assert len(texts) == site.n_articles and not any("以上,欢迎交流。" in t for t in texts)
    versions = _rows(db, "SELECT count(DISTINCT rules_version) FROM articles")
    assert versions == [(1,)]
    assert asyncio.run(reextract(source="demo", config_path=str(config)))["demo"]["reextracted"] == 0
    assert requests > 0


def test_crawl_publishes_an_artifact(tmp_path: Path, prefect_harness) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from flows.crawl import crawl

    site = DemoSite(12)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        asyncio.run(crawl(source="demo", config_path=str(config)))

    async def latest() -> list:
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["crawl-demo"])),
                                               sort=ArtifactSort.CREATED_DESC)

    artifacts = asyncio.run(latest())
    assert artifacts, "the crawl run published its summary"
    assert "articles new | 12" in artifacts[0].data


def test_cli_crawl_exit_codes(tmp_path: Path, prefect_harness) -> None:
    import os

    from prefect.settings import PREFECT_API_URL

    # the CLI in a subprocess reports to the harness's server instead of starting its own (saves ~20 s)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    site = DemoSite(12)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url, crawl={"retries": 0})
        ok = subprocess.run([sys.executable, "-m", "flows.cli", "crawl", "demo", "--quiet", "--config", str(config)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
        assert ok.returncode == 0, ok.stderr
        assert "articles new" in ok.stdout and "12" in ok.stdout
        # the run itself fails (the warehouse path is a folder): exit 1, with the reason
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        blocked = tmp_path / "a-folder.duckdb"
        blocked.mkdir()
        data["warehouse"]["path"] = str(blocked)
        config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        failed = subprocess.run([sys.executable, "-m", "flows.cli", "crawl", "demo", "--quiet", "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
        assert failed.returncode == 1, (failed.stdout, failed.stderr)
        assert "run failed" in failed.stderr


def test_a_window_retried_after_warehouse_busy_commits_once_and_counts_once(tmp_path: Path, prefect_harness,
                                                                             monkeypatch) -> None:
    """The commit-window task's retry condition fires on TransientError (a locked file), and a retried
    window neither stores nor counts twice."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.crawl import RunHooks, crawl, run_hooks
    from warehouse import Warehouse, WarehouseBusy

    record_window = Warehouse.record_window
    calls: list[int] = []

    def busy_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise WarehouseBusy("cannot write to warehouse: process 4242 has held it for 0.5s")
        return record_window(self, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "record_window", busy_once)
    site = DemoSite(30)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        with run_hooks(RunHooks()) as hooks:
            state = asyncio.run(crawl(source="demo", config_path=str(config), return_state=True))
    assert state.is_completed()
    summary = hooks.summaries[0]
    db = tmp_path / "sieve.duckdb"
    assert summary.articles_new == site.n_articles == _rows(db, "SELECT count(*) FROM articles")[0][0]
    fetched = _rows(db, "SELECT count(*) FROM fetches")[0][0]
    assert summary.fetched + summary.unchanged + summary.failed == fetched, "each fetch counted once"
    assert _rows(db, "SELECT count(*) = count(DISTINCT fetch_id) FROM fetches") == [(True,)]

    async def task_runs() -> list:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))

    commits = [run for run in asyncio.run(task_runs()) if run.name.startswith("commit-window")]
    assert len(commits) == summary.windows
    assert sorted(run.run_count for run in commits)[-1] == 2, "Prefect retried the window that met a locked file"
    assert all(run.state.is_completed() for run in commits)


def test_the_summary_says_what_happened(tmp_path: Path, prefect_harness) -> None:
    """One RunSummary: the flow's return, the crawl_runs row and the artifact say the same, and say why."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from flows.crawl import RunHooks, backfill, crawl, run_hooks
    from pipeline.summary import RunSummary

    site = DemoSite(40)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url)
        # a list-page backfill counts the URLs it discovered; --since rejections are outside_window
        summary = asyncio.run(backfill(source="demo", list_pages=[server.base_url + "/list/2.html"],
                                       since=date(2099, 1, 1), config_path=str(config)))
        assert summary["discovered"] >= 10
        assert summary["rejected_outside_window"] == summary["rejected"] == 10 and summary["articles_new"] == 0
        assert "outside --since/--until" in dict(RunSummary.from_dict(summary).rows())
        with run_hooks(RunHooks()) as hooks:
            asyncio.run(crawl(source="demo", config_path=str(config)))
    first = hooks.summaries[0]
    assert first.extracted == site.n_articles - 10 and first.reextracted == 0
    # rules change: the next crawl fetches nothing new and says it re-extracted the stored pages
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sources"]["demo"]["rules"]["drop_lines"] = ["^以上,欢迎交流。$"]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with run_hooks(RunHooks()) as hooks:
        returned = asyncio.run(crawl(source="demo", config_path=str(config)))
    again = hooks.summaries[0]
    assert again.fetched == 0 and again.reextracted == site.n_articles and again.articles_updated > 0
    assert any("extracted again without fetching" in note for note in again.notes())
    # the three renderings: flow return, crawl_runs.counts, the artifact
    assert returned == again.as_dict()
    db = tmp_path / "sieve.duckdb"
    assert json.loads(_counts(db, again.run_id)) == again.as_dict()

    async def artifact() -> str:
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["crawl-demo"])),
                                                sort=ArtifactSort.CREATED_DESC, limit=1)
            return found[0].data

    assert asyncio.run(artifact()) == again.markdown()


def _counts(db: Path, run_id: str) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT counts FROM crawl_runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
