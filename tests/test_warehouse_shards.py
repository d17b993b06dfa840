"""Shards and the loader: Parquet parts round-trip on a folder and on an fsspec URL, a part without a manifest is
ignored then cleaned up, a bad part is refused (not loaded, not a crash), every part is applied with the writer's own
upserts in one transaction, an end part closes its claim once its windows are in, and loading twice changes nothing."""
from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from warehouse import Warehouse
from warehouse.loader import load_shards
from warehouse.shards import END_PART, START_PART, Shard, ShardError, ShardRef, ShardStore, window_part

from .test_warehouse_support import T0, article, dump, fetch, frontier_row, plain_connect, rejection

WEEK = timedelta(days=7)


def _rows(host: str = "demo.example", n: int = 3):
    fetches = [fetch(f"https://{host}/list/1", kind="list", html=None),
               *(fetch(f"https://{host}/a/{i}", html=f"<html>正文 {i}</html>", etag=f'"e{i}"') for i in range(1, n)),
               fetch(f"https://{host}/a/{n}", status=503, error="http_5xx")]
    discovered = [frontier_row(f"https://{host}/a/{i}", parent=f"https://{host}/list/1") for i in range(1, n + 3)]
    articles = [replace(article(i), url=f"https://{host}/a/{i}", simhash=(1 << 64) - i) for i in range(1, n)]
    return fetches, discovered, articles, [rejection(f"https://{host}/a/{n + 1}")]


def _shard(claim_id: str, part: str, *, at=T0, **rows) -> Shard:
    return Shard(source_id="demo", claim_id=claim_id, part=part, written_at=at, run_id="run-1",
                 revisit_after_s=WEEK.total_seconds(), **rows)


def _window(claim_id: str, number: int, rows=None, at=T0) -> Shard:
    fetches, discovered, articles, rejections = rows or _rows()
    return _shard(claim_id, window_part(number), at=at, fetches=fetches, discovered=discovered, articles=articles,
                  rejections=rejections)


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse(tmp_path / "w.duckdb")
    w.migrate()
    return w


@pytest.fixture
def store(tmp_path) -> ShardStore:
    return ShardStore(str(tmp_path / "shards"))


def _claimed(wh: Warehouse, host: str = "demo.example") -> str:
    wh.add_frontier([frontier_row(f"https://{host}/list/1", kind="list")])
    [claim] = wh.claim("run-1", "demo", max_claims=1, claim_urls=10, lease=timedelta(minutes=5), now=T0)
    return claim.claim_id


@pytest.mark.parametrize("root", ["folder", "memory"])
def test_a_part_reads_back_exactly_as_written(tmp_path, root) -> None:
    store = ShardStore(str(tmp_path / "s") if root == "folder" else f"memory://sieve-{uuid.uuid4().hex}")
    shard = _window("c1", 1)
    shard.summary = {"fetched": 3}
    store.write(shard)
    [ref] = store.complete()
    assert ref.shard_id == "demo/c1/00001" and ref.written_at == T0
    back = store.read(ref)
    assert (back.fetches, back.discovered, back.articles, back.rejections) == (
        shard.fetches, shard.discovered, shard.articles, shard.rejections)
    assert back.fetches[1].html == "<html>正文 1</html>" and back.fetches[0].html is None
    assert (back.summary, back.run_id, back.revisit_after_s) == ({"fetched": 3}, "run-1", WEEK.total_seconds())


def test_a_part_without_its_manifest_is_ignored_then_cleaned_up(store) -> None:
    folder = Path(store.write(_window("c1", 1)))
    (folder / "manifest.json").unlink()                       # the worker died before its last write
    assert store.complete() == []
    assert store.incomplete(older_than=timedelta(hours=1)) == []   # it may still be writing
    later = T0.now(T0.tzinfo) + timedelta(hours=2)
    assert store.clean_incomplete(older_than=timedelta(hours=1), now=later) == ["demo/c1/00001"]
    assert not folder.exists() and not folder.parent.exists()


def test_a_part_that_is_not_what_its_manifest_says_is_refused(wh, store) -> None:
    claim_id = _claimed(wh)
    folder = Path(store.write(_window(claim_id, 1)))
    table = pq.read_table(folder / "articles.parquet")
    pq.write_table(table.slice(0, 1), folder / "articles.parquet")     # a row short
    report = load_shards(wh, store)
    assert list(report.rejected) == [f"demo/{claim_id}/00001"] and "rows" in report.rejected[f"demo/{claim_id}/00001"]
    assert wh.query("SELECT count(*) FROM articles").rows == [(0,)]
    rejected = Path(store.base) / "rejected" / "demo" / claim_id / "00001"
    assert "its manifest says 2" in (rejected / "reason.txt").read_text()
    with pytest.raises(ShardError, match="1 rows, its manifest says 2"):
        store.read(ShardRef(str(rejected), {"files": {"articles": {"rows": 2}}}))


def test_shards_of_unknown_claims_or_other_sources_are_refused(wh, store) -> None:
    claim_id = _claimed(wh)
    store.write(_window("never-claimed", 1))
    fetches, discovered, articles, rejections = _rows()
    store.write(_window(claim_id, 1, (fetches, discovered, [replace(articles[0], source_id="other")], rejections)))
    report = load_shards(wh, store)
    assert sorted(report.rejected) == [f"demo/{claim_id}/00001", "demo/never-claimed/00001"]
    assert "not made by this warehouse" in report.rejected["demo/never-claimed/00001"]
    assert "other sources (other)" in report.rejected[f"demo/{claim_id}/00001"]
    assert wh.query("SELECT count(*) FROM fetches").rows == [(0,)]     # one transaction: nothing of it stayed


def test_a_shard_is_applied_with_the_writers_own_upserts(tmp_path, wh, store) -> None:
    claim_id = _claimed(wh)
    fetches, discovered, articles, rejections = _rows()
    store.write(_window(claim_id, 1, (fetches, discovered, articles, rejections)))
    assert load_shards(wh, store).loaded == [f"demo/{claim_id}/00001"]
    direct = Warehouse(tmp_path / "direct.duckdb")
    direct.add_frontier([frontier_row("https://demo.example/list/1", kind="list")])
    direct.record_fetches(fetches, revisit_after=WEEK, discovered=discovered)
    direct.record_extractions(articles, rejections)
    same = ("SELECT * EXCLUDE (discovered_at, seq) FROM frontier ORDER BY url", "SELECT * FROM fetches ORDER BY fetch_id",
            "SELECT * FROM pages ORDER BY url", "SELECT * FROM articles ORDER BY article_id",
            "SELECT * FROM extractions ORDER BY url")
    for sql in same:
        assert wh.query(sql).rows == direct.query(sql).rows, sql


def test_an_end_part_closes_its_claim_once_its_windows_are_in_and_twice_changes_nothing(tmp_path, wh, store) -> None:
    claim_id = _claimed(wh)
    store.write(_shard(claim_id, START_PART, at=T0 + timedelta(seconds=1)))
    store.write(_window(claim_id, 1, at=T0 + timedelta(seconds=2)))
    store.write(_shard(claim_id, END_PART, at=T0 + timedelta(seconds=4), final=True, windows=2))
    first = load_shards(wh, store)
    assert first.loaded == [f"demo/{claim_id}/00000", f"demo/{claim_id}/00001"]
    assert first.waiting == [f"demo/{claim_id}/end"]                   # window 2 is still being written
    [open_claim] = wh.claims()
    assert open_claim.lease_until == T0 + timedelta(seconds=2, minutes=5)   # the window proved its worker alive
    store.write(_window(claim_id, 2, _rows("demo.example", 5), at=T0 + timedelta(seconds=3)))
    second = load_shards(wh, store)
    assert second.loaded == [f"demo/{claim_id}/00002", f"demo/{claim_id}/end"] and second.closed == [claim_id]
    assert wh.claims() == [] and [c.status for c in wh.claims(open_only=False)] == ["done"]
    assert sorted(p.name for p in (Path(store.base) / "loaded" / "demo" / claim_id).iterdir()) == [
        "00000", "00001", "00002", "end"]
    assert not (Path(store.base) / "incoming" / "demo" / claim_id).exists()
    before = dump(wh.path)
    # The same parts again (a loader that crashed before moving them): the ledger says loaded, nothing changes.
    shutil.copytree(Path(store.base) / "loaded", Path(store.base) / "incoming", dirs_exist_ok=True)
    again = load_shards(wh, store)
    assert again.loaded == [] and len(again.already) == 4
    assert dump(wh.path) == before
    # Without the ledger, the upserts alone change nothing either.
    shutil.copytree(Path(store.base) / "loaded", Path(store.base) / "incoming", dirs_exist_ok=True)
    con = plain_connect(wh.path, read_only=False)
    con.execute("DELETE FROM shard_loads")
    con.close()
    replay = load_shards(wh, store)
    assert len(replay.loaded) == 4 and replay.counts["articles_new"] == 0 and replay.counts["discovered"] == 0
    assert dump(wh.path) == before


def test_what_the_loader_reads_from_shared_storage_is_bounded(wh, store, monkeypatch) -> None:
    import json

    import warehouse.shards as shards

    claim_id = _claimed(wh)
    big = Path(store.write(_window(claim_id, 1)))
    odd = Path(store.write(_window(claim_id, 2)))
    manifest = json.loads((odd / "manifest.json").read_text())
    manifest["files"]["../../etc"] = {"rows": 1}
    (odd / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(shards, "MAX_FILE_BYTES", (big / "pages.parquet").stat().st_size - 1)
    report = load_shards(wh, store)
    assert "larger than" in report.rejected[f"demo/{claim_id}/00001"]
    assert "unknown file '../../etc'" in report.rejected[f"demo/{claim_id}/00002"]
    assert wh.query("SELECT count(*) FROM fetches").rows == [(0,)]


def test_the_ledger_forgets_claims_closed_long_ago_and_a_replay_still_changes_nothing(wh, store) -> None:
    claim_id = _claimed(wh)
    store.write(_window(claim_id, 1))
    store.write(_shard(claim_id, END_PART, final=True, windows=1))
    load_shards(wh, store)
    assert wh.prune_shard_loads(timedelta(days=7)) == 0            # closed just now: kept
    before = dump(wh.path)
    assert wh.prune_shard_loads(timedelta(0)) == 2
    shutil.copytree(Path(store.base) / "loaded", Path(store.base) / "incoming", dirs_exist_ok=True)
    assert len(load_shards(wh, store).loaded) == 2                 # applied again ...
    assert dump(wh.path) == before                                 # ... and nothing changed
