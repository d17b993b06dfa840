"""Frontier scheduling when hosts fail: outages back off (never a week), start URLs and host failures never
retire a URL, Retry-After is followed, and only a run that fetched something is a good crawl."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

import outcomes
import warehouse
from warehouse import SourceRow, Warehouse

from .test_warehouse_support import T0, fetch, frontier_row

WEEK = timedelta(days=7)
START = "https://d/list/1"


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "w.duckdb", max_failures=3, retry_backoff=timedelta(minutes=5),
                     max_backoff=timedelta(hours=2), retry_after_cap=timedelta(hours=1))


def _state(wh: Warehouse, url: str) -> tuple:
    return wh.query("SELECT attempts, last_error, next_fetch_at, is_start FROM frontier WHERE url = ?", [url]).rows[0]


def _due(wh: Warehouse, at, kinds=None) -> list[str]:
    return [item.url for item in wh.due("demo", at, limit=50, kinds=kinds)]


def test_transient_kinds_come_from_outcomes() -> None:
    assert warehouse.TRANSIENT_ERRORS == outcomes.TRANSIENT_FETCH_ERRORS
    assert {"unreachable", "rate_limited", "timeout", "connection", "http_5xx"} <= set(warehouse.TRANSIENT_ERRORS)


def test_an_unreachable_host_backs_off_for_hours_and_never_retires_the_url(wh) -> None:
    url = "https://d/a/1"
    wh.add_frontier([frontier_row(url)])
    at, gaps = T0, []
    for _ in range(8):                                   # more outages than max_failures
        wh.record_fetches([fetch(url, status=None, error="unreachable", fetched_at=at)], revisit_after=WEEK)
        next_at = _state(wh, url)[2]
        gaps.append(next_at - at)
        assert _due(wh, next_at - timedelta(seconds=1)) == []
        assert _due(wh, next_at) == [url]                # still scheduled: the host failed, not the URL
        at = next_at
    minutes = [g / timedelta(minutes=1) for g in gaps]
    assert minutes == [5, 10, 20, 40, 80, 120, 120, 120]  # doubling, capped at max_backoff (not revisit_after)
    assert _state(wh, url)[0] == 8
    # The URL's own failures still retire it: a 5xx after the outage, max_failures reached.
    wh.record_fetches([fetch(url, status=500, error="http_5xx", fetched_at=at)], revisit_after=WEEK)
    assert _due(wh, at + WEEK) == []


def test_a_robots_outage_over_many_runs_does_not_retire_the_start_url(wh) -> None:
    """The issue's scenario: robots.txt down for 5+ runs; every scheduled run still tries the start URL."""
    wh.add_frontier([frontier_row(START, kind="list"), frontier_row("https://d/a/1")])
    at = T0
    for _ in range(6):
        assert wh.make_due("demo", warehouse.LIST_KINDS, at, start_urls=[START]) in (0, 1)
        assert START in _due(wh, at)
        wh.record_fetches([fetch(START, kind="list", status=None, error="unreachable", fetched_at=at),
                           fetch("https://d/a/1", status=None, error="unreachable", fetched_at=at)], revisit_after=WEEK)
        at += timedelta(hours=1)                         # the next scheduled run
    attempts, error, _, is_start = _state(wh, START)
    assert (attempts, error, is_start) == (6, "unreachable", True)
    # A start URL is never given up even on its own failures; an ordinary list page is.
    wh.add_frontier([frontier_row("https://d/list/2", kind="list")])
    for k in range(4):
        wh.record_fetches([fetch(START, kind="list", status=404, error="http_4xx", fetched_at=at + timedelta(minutes=k)),
                           fetch("https://d/list/2", kind="list", status=404, error="http_4xx",
                                 fetched_at=at + timedelta(minutes=k))], revisit_after=WEEK)
    later = at + timedelta(hours=1)
    wh.make_due("demo", warehouse.LIST_KINDS, later, start_urls=[START])
    assert _due(wh, later, kinds=["list"]) == [START]
    # Start URLs follow the config: one that is no longer configured is an ordinary URL again.
    wh.make_due("demo", warehouse.LIST_KINDS, later, start_urls=["https://d/list/2"])
    assert _state(wh, START)[3] is False and _state(wh, "https://d/list/2")[3] is True


def test_429_follows_retry_after_capped(wh) -> None:
    urls = [f"https://d/a/{n}" for n in range(1, 5)]
    wh.add_frontier([frontier_row(u) for u in urls])
    rows = [replace(fetch(urls[0], status=429, error="rate_limited"), retry_after_s=120.0),
            replace(fetch(urls[1], status=429, error="rate_limited"), retry_after_s=10 * 86400.0),
            fetch(urls[2], status=429, error="rate_limited"),                 # no Retry-After: back off
            replace(fetch(urls[3], status=503, error="http_5xx"), retry_after_s=30.0)]
    wh.record_fetches(rows, revisit_after=WEEK)
    gaps = [_state(wh, u)[2] - T0 for u in urls]
    assert gaps == [timedelta(seconds=120), timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=5)]
    # make_due at the next run start does not override what the host asked of a start URL.
    wh.make_due("demo", warehouse.LIST_KINDS, T0 + timedelta(seconds=10), start_urls=[urls[0]])
    assert _state(wh, urls[0])[2] == T0 + timedelta(seconds=120)
    # A host that keeps answering 429 never retires the URL either.
    for k in range(5):
        wh.record_fetches([replace(fetch(urls[0], status=429, error="rate_limited", fetched_at=T0 + timedelta(hours=k + 1)),
                                   retry_after_s=60.0)], revisit_after=WEEK)
    assert _due(wh, T0 + timedelta(hours=6)) [:1] == [urls[0]]


def test_only_a_run_that_fetched_something_is_a_good_crawl(wh) -> None:
    wh.upsert_sources([SourceRow(s, "h", "{}") for s in ("ok", "down", "idle", "notmod")])

    def crawl(source: str, kind: str, *fetches) -> None:
        run = wh.start_run(kind, source, {})
        if fetches:
            wh.record_fetches([replace(f, run_id=run, source_id=source) for f in fetches], revisit_after=WEEK)
        wh.finish_run(run, "completed", {})

    crawl("ok", "crawl", fetch("https://ok/a/1"), fetch("https://ok/a/2", status=None, error="timeout"))
    crawl("down", "crawl", fetch("https://down/", kind="list", status=None, error="unreachable"))
    crawl("down", "backfill")
    crawl("idle", "reextract")                           # an empty reextract is no crawl
    crawl("notmod", "crawl", fetch("https://nm/a/1", status=304))
    health = {r[0]: r[1] for r in wh.query("SELECT source_id, last_good_crawl IS NOT NULL FROM v_source_health").rows}
    assert health == {"ok": True, "down": False, "idle": False, "notmod": True}
    stats = wh.stats()
    col = stats.columns.index("last_good_crawl")
    assert {r[0]: r[col] is not None for r in stats.rows} == health


def test_a_url_found_and_fetched_in_one_batch_keeps_where_it_was_found(wh) -> None:
    """A fleet worker fetches the articles it finds, often in the same window as the list page: the URL's
    frontier row still says which page linked it."""
    article = "https://d/news/1.html"
    wh.record_fetches([fetch(START, kind="list", fetched_at=T0), fetch(article, fetched_at=T0 + timedelta(seconds=1))],
                      revisit_after=WEEK, discovered=[frontier_row(article, parent=START)])
    assert wh.query("SELECT discovered_from, fetch_count FROM frontier WHERE url = ?", [article]).rows == [(START, 1)]
