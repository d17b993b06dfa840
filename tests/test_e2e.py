"""End to end: the demo aggregator on 127.0.0.1 -> the Prefect crawl flow -> a DuckDB file.

Asserted against the demo site's own truth: every article stored once, its clean text, title and
date right, duplicates folded, no boilerplate leaked, robots.txt obeyed, and a second run adds
nothing.
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from demo import DemoServer, DemoSite
from tests.conftest import ROOT, write_config

BOILERPLATE = [
    "聚热点", "juredian", "搜索建议", "热博", "(展开)", "我唯一的个人微信", "添加请备注来自公众号",
    "免责声明", "本站仅提供", "版权所有", "您当前的位置", "上一篇", "下一篇", "点击上方蓝字",
    "长按识别二维码", "阅读原文", "推荐阅读", "相关阅读", "相关文章", "首页",
]


def _rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _char_f1(expected: str, got: str) -> float:
    from collections import Counter

    strip = re.compile(r"[\s\W_]+", re.UNICODE)
    a, b = Counter(strip.sub("", expected)), Counter(strip.sub("", got))
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(b.values()), overlap / sum(a.values())
    return 2 * precision * recall / (precision + recall)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, prefect_harness):
    """Crawl the demo site twice with the real Prefect flow; keep what the test asserts on."""
    from flows.crawl import crawl

    tmp_path = tmp_path_factory.mktemp("e2e")
    site = DemoSite(60)
    with DemoServer(site) as server:
        config_path = write_config(tmp_path, server.base_url)
        first = asyncio.run(crawl(source="demo", config_path=str(config_path)))
        requests_first = list(server.requests)
        second = asyncio.run(crawl(source="demo", config_path=str(config_path)))
        requests_second = server.requests[len(requests_first):]
    return {
        "site": site,
        "db": tmp_path / "sieve.duckdb",
        "config": config_path,
        "first": first,
        "second": second,
        "requests_first": requests_first,
        "requests_second": requests_second,
        "base_url": server.base_url,
    }


def test_every_article_stored_once(crawled) -> None:
    site: DemoSite = crawled["site"]
    db = crawled["db"]
    stored = _rows(db, "SELECT url FROM articles WHERE source_id = 'demo'")
    paths = sorted(url.split(crawled["base_url"], 1)[1] for (url,) in stored)
    assert paths == sorted(a.path for a in site.articles())
    assert crawled["first"]["articles_new"] == site.n_articles
    # list pages are fetched, not stored as articles
    list_fetches = _rows(db, "SELECT count(*) FROM fetches WHERE url LIKE '%/list/%' AND error IS NULL AND run_id = ?",
                         [crawled["first"]["run_id"]])
    assert list_fetches[0][0] == site.n_list_pages


def test_clean_text_title_and_no_boilerplate(crawled) -> None:
    site: DemoSite = crawled["site"]
    rows = _rows(crawled["db"], "SELECT url, title, text FROM articles")
    by_path = {url.split(crawled["base_url"], 1)[1]: (title, text) for url, title, text in rows}
    scores = []
    for article in site.articles():
        title, text = by_path[article.path]
        assert title == article.title, article.path
        for marker in BOILERPLATE:
            assert marker not in text, (article.path, marker)
        # the article's own first and last lines survive, and short real paragraphs too
        lines = text.split("\n")
        assert lines[0] == article.paragraphs[0], article.path
        assert lines[-1] == article.paragraphs[-1], article.path
        for short in ("P用没有。", "一切都有代价。", "共勉。"):
            if short in article.paragraphs:
                assert short in lines, (article.path, short)
        scores.append(_char_f1(article.text, text))
    assert min(scores) >= 0.97, min(scores)


def test_dates_resolved_or_null(crawled) -> None:
    site: DemoSite = crawled["site"]
    rows = _rows(crawled["db"], "SELECT url, published_at FROM articles")
    by_path = {url.split(crawled["base_url"], 1)[1]: published for url, published in rows}
    now = datetime.now(UTC)
    for article in site.articles():
        got = by_path[article.path]
        if article.published_at is not None:
            assert got is not None and got == article.published_at, (article.path, got, article.published_at)
        elif article.relative_hours is not None:
            expected = now - timedelta(hours=article.relative_hours)
            assert got is not None and abs(got - expected) < timedelta(minutes=30), (article.path, got)
        else:  # no date on the page: never one borrowed from sidebar links like /news/20230512/...
            assert got is None, (article.path, got)


def test_duplicates_point_to_first_seen(crawled) -> None:
    site: DemoSite = crawled["site"]
    rows = _rows(crawled["db"], "SELECT url, article_id, dup_of FROM articles")
    by_path = {url.split(crawled["base_url"], 1)[1]: (aid, dup) for url, aid, dup in rows}
    copies = [a for a in site.articles() if a.copy_of]
    assert copies, "the demo site republishes some articles"
    for article in copies:
        # batches run concurrently, so either copy may be stored first: the other points to it
        original_id, original_dup = by_path[site.article(article.copy_of).path]
        copy_id, copy_dup = by_path[article.path]
        assert (original_dup, copy_dup) in ((None, original_id), (copy_id, None)), article.path
    copied = {a.copy_of for a in copies} | {a.number for a in copies}
    assert all(by_path[a.path][1] is None for a in site.articles() if a.number not in copied)


def test_robots_and_user_agent(crawled) -> None:
    paths = [path for path, _ in crawled["requests_first"]]
    assert "/robots.txt" in paths
    assert not any(p.startswith("/news/20230430/") for p in paths), "robots.txt disallows /news/20230430/"
    reasons = _rows(crawled["db"], "SELECT error FROM fetches WHERE url LIKE '%/news/20230430/%'")
    assert reasons and all(r == ("robots",) for r in reasons)
    assert all(ua.startswith("sieve/") for _, ua in crawled["requests_first"])


def test_second_run_adds_nothing(crawled) -> None:
    site: DemoSite = crawled["site"]
    second = crawled["second"]
    assert second["articles_new"] == 0
    assert _rows(crawled["db"], "SELECT count(*) FROM articles")[0][0] == site.n_articles
    # the second run re-checks list pages (conditionally) and never refetches a stored article
    refetched = [p for p, _ in crawled["requests_second"] if p.startswith("/news/")]
    assert refetched == []
    runs = _rows(crawled["db"], "SELECT kind, status FROM crawl_runs ORDER BY started_at")
    assert runs == [("crawl", "completed"), ("crawl", "completed")]


def test_sql_command_reads_the_warehouse(crawled) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "sql", "--format", "json", "--config", str(crawled["config"]),
         "SELECT count(*) AS n, count(dup_of) AS dups FROM articles"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows == [{"n": crawled["site"].n_articles, "dups": len([a for a in crawled["site"].articles() if a.copy_of])}]
