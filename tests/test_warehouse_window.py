"""`Warehouse.record_window`: a streaming writer's window (fetch log, pages, frontier, articles) is one
transaction, replayable without storing or counting twice."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import warehouse.articles as article_store
from warehouse import Warehouse

from .test_warehouse_support import article, dump, fetch, frontier_row, rejection


def _window(n: int, start: int = 0):
    arts = [article(start + i) for i in range(n)]
    rows = [fetch(a.url, html=f"<html>{a.text}</html>") for a in arts]
    found = [frontier_row(f"https://demo.example/new/{start + i}") for i in range(n)]
    return rows, found, arts


def test_a_window_commits_whole_and_replays_as_a_no_op(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    rows, found, arts = _window(20)
    added, counts = wh.record_window(rows, revisit_after=timedelta(days=1), discovered=found, articles=arts,
                                     rejections=[rejection("https://demo.example/r/1")])
    assert added == 20   # only the discovered URLs count as new to the frontier
    assert (counts.new, counts.rejected) == (20, 1)
    before = dump(wh.path)
    assert len(before["fetches"]) == 20 and len(before["pages"]) == 20 and len(before["articles"]) == 20
    added, counts = wh.record_window(rows, revisit_after=timedelta(days=1), discovered=found, articles=arts)
    assert added == 0 and counts.new == 0 and counts.unchanged == 20
    assert dump(wh.path) == before


def test_a_window_that_fails_midway_stores_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.migrate()
    empty = dump(wh.path)
    rows, found, arts = _window(10)

    def broken(*args):
        raise RuntimeError("disk hiccup while writing articles")

    monkeypatch.setattr(article_store, "_write_articles", broken)
    with pytest.raises(RuntimeError, match="disk hiccup"):
        wh.record_window(rows, revisit_after=timedelta(days=1), discovered=found, articles=arts)
    assert dump(wh.path) == empty, "the fetch log and pages written before the failure were rolled back"
    monkeypatch.undo()
    added, counts = wh.record_window(rows, revisit_after=timedelta(days=1), discovered=found, articles=arts)
    assert counts.new == 10 and len(dump(wh.path)["fetches"]) == 10
