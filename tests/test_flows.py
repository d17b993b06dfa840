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


def test_ctrl_c_stops_cleanly_and_keeps_what_was_fetched(tmp_path: Path, prefect_harness) -> None:
    import os
    import signal
    import time

    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    site = DemoSite(250)
    with DemoServer(site) as server:
        config = write_config(tmp_path, server.base_url,
                              demo_overrides={"crawl": {"per_host_concurrency": 1, "delay_seconds": 0.03}})
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "crawl", "demo", "--quiet", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        deadline = time.monotonic() + 120
        # past the first batch of 100 articles, so at least one batch is committed when Ctrl-C comes
        while time.monotonic() < deadline and sum(1 for p, _ in list(server.requests) if p.startswith("/news/")) < 130:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    db = tmp_path / "sieve.duckdb"
    stored = _rows(db, "SELECT count(*) FROM articles")[0][0]
    assert 0 < stored < site.n_articles
    assert _rows(db, "SELECT status FROM crawl_runs") == [("cancelled",)]
