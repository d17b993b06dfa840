"""Idempotent batched writes: fetch log, pages, frontier scheduling, sources, runs."""
from __future__ import annotations

from datetime import timedelta

import pytest

from warehouse import FrontierItem, SourceRow, Warehouse, WarehouseError

from .test_warehouse_support import T0, article, dump, fetch, frontier_row, rejection

DAY = timedelta(days=1)


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse(tmp_path / "w.duckdb")
    w.migrate()
    return w


def _mixed_batch():
    fetches = [
        fetch("https://demo.example/list/1", kind="list", html="<html>list 1</html>", etag='"l1"'),
        fetch("https://demo.example/a/1", html="<html>one</html>", etag='"e1"', last_modified="Mon"),
        fetch("https://demo.example/a/2", status=503, error="http_5xx"),
        fetch("https://demo.example/a/3", status=None, error="timeout"),
    ]
    discovered = [frontier_row(f"https://demo.example/a/{n}", parent="https://demo.example/list/1") for n in range(1, 8)]
    return fetches, discovered


def test_loading_the_same_batches_twice_changes_nothing(wh) -> None:
    fetches, discovered = _mixed_batch()
    articles = [article(n) for n in range(1, 6)] + [article(9, text=article(1).text)]
    rejections = [rejection("https://demo.example/a/7")]

    def load() -> None:
        wh.upsert_sources([SourceRow("demo", "h1", '{"start_urls": []}')])
        wh.add_frontier([frontier_row("https://demo.example/list/1", kind="list")])
        wh.record_fetches(fetches, revisit_after=DAY, discovered=discovered)
        wh.record_extractions(articles, rejections)

    load()
    first = dump(wh.path)
    assert len(first["fetches"]) == 4 and len(first["pages"]) == 2 and len(first["frontier"]) == 8
    assert len(first["articles"]) == 6 and len(first["extractions"]) == 7
    load()
    second = dump(wh.path)
    assert second == first
    counts = wh.record_extractions(articles, rejections)
    assert (counts.new, counts.updated, counts.unchanged, counts.duplicates, counts.rejected) == (0, 0, 6, 0, 1)


def test_a_batch_with_duplicate_keys_keeps_the_last_row_once(wh) -> None:
    old, new = article(1, title="first"), article(1, title="second")
    counts = wh.record_extractions([old, article(2), new], [rejection("u"), rejection("u", reason="empty")])
    assert (counts.new, counts.rejected) == (2, 1)
    assert wh.query("SELECT title FROM articles WHERE article_id = 'a0000001'").rows == [("second",)]
    assert wh.query("SELECT reason FROM extractions WHERE url = 'u'").rows == [("empty",)]

    url = "https://demo.example/a/1"
    wh.record_fetches([fetch(url, html="<p>old</p>"), fetch(url, html="<p>new</p>", fetched_at=T0 + timedelta(minutes=1))],
                      revisit_after=DAY, discovered=[frontier_row("https://x/1"), frontier_row("https://x/1", kind="list")])
    assert wh.query("SELECT html FROM pages").rows == [("<p>new</p>",)]
    assert wh.query("SELECT count(*) FROM fetches").rows == [(2,)]
    assert wh.query("SELECT url, kind FROM frontier ORDER BY url").rows == [
        (url, "article"), ("https://x/1", "list")]
    assert wh.add_frontier([frontier_row("https://x/2"), frontier_row("https://x/2"), frontier_row("https://x/1")]) == 1


def test_frontier_due_order_and_schedule(wh) -> None:
    assert wh.add_frontier([frontier_row("https://d/a/1"), frontier_row("https://d/a/2"),
                            frontier_row("https://d/list/1", kind="list"), frontier_row("https://o/a/1", source="other")]) == 4
    due = wh.due("demo", T0, limit=10)
    assert [d.url for d in due] == ["https://d/list/1", "https://d/a/1", "https://d/a/2"]
    assert due[0] == FrontierItem("https://d/list/1", "demo", "list", None, None, 0)
    assert [d.url for d in wh.due("demo", T0, limit=1, kinds=["article"])] == ["https://d/a/1"]

    wh.record_fetches([
        fetch("https://d/list/1", kind="list", etag='"L"'),
        fetch("https://d/a/1", etag='"A"', last_modified="Mon, 05 Jan 2026"),
        fetch("https://d/a/2", status=404, error="http_4xx"),
    ], revisit_after=DAY, discovered=[frontier_row("https://d/a/3", parent="https://d/list/1")])
    assert [d.url for d in wh.due("demo", T0 + timedelta(minutes=1), limit=10)] == ["https://d/a/3"]
    # A day later everything is due again, list pages first; make_due brings list pages forward early.
    assert [d.url for d in wh.due("demo", T0 + DAY, limit=10)][:1] == ["https://d/list/1"]
    assert wh.make_due("demo", ["list"], T0 + timedelta(hours=1)) == 1
    assert [d.url for d in wh.due("demo", T0 + timedelta(hours=1), limit=10)] == ["https://d/list/1", "https://d/a/3"]

    # A failed refetch keeps the validators; a 304 keeps them too and resets the failure count.
    later = T0 + DAY
    wh.record_fetches([fetch("https://d/a/1", status=None, error="timeout", fetched_at=later)], revisit_after=DAY)
    row = wh.query("SELECT etag, last_modified, attempts, last_error, next_fetch_at FROM frontier WHERE url = 'https://d/a/1'").rows[0]
    assert row[:4] == ('"A"', "Mon, 05 Jan 2026", 1, "timeout")
    assert row[4] == later + wh.retry_backoff           # transient: short back-off, not a whole revisit
    assert [d.etag for d in wh.due("demo", later + wh.retry_backoff, limit=10, kinds=["article"]) if d.url.endswith("/a/1")] == ['"A"']
    wh.record_fetches([fetch("https://d/a/1", status=304, fetched_at=later + timedelta(hours=1))], revisit_after=DAY)
    assert wh.query("SELECT etag, attempts, last_status, next_fetch_at FROM frontier WHERE url = 'https://d/a/1'").rows == [
        ('"A"', 0, 304, later + timedelta(hours=1) + DAY)]
    # A 304 stores no page; the page kept is the first fetch's.
    assert wh.query("SELECT count(*) FROM pages WHERE url = 'https://d/a/1'").rows == [(1,)]


def test_transient_failures_back_off_then_give_up(tmp_path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb", max_failures=3, retry_backoff=timedelta(minutes=10))
    url = "https://d/a/1"
    wh.add_frontier([frontier_row(url)])
    at = T0
    gaps = []
    for _ in range(3):
        wh.record_fetches([fetch(url, status=500, error="http_5xx", fetched_at=at)], revisit_after=DAY)
        next_at = wh.query("SELECT next_fetch_at FROM frontier").rows[0][0]
        gaps.append(next_at - at)
        assert wh.due("demo", next_at - timedelta(seconds=1), limit=5) == []
        at = next_at
    assert gaps == [timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40)]
    assert wh.due("demo", at + 2 * DAY, limit=5) == []              # given up after 3 failures
    assert wh.make_due("demo", ["article"], at + 2 * DAY) == 0


def test_runs_are_recorded(wh) -> None:
    run_id = wh.start_run("crawl", "demo", {"limit": 5})
    assert wh.query("SELECT status, params->>'limit' FROM crawl_runs").rows == [("running", "5")]
    wh.finish_run(run_id, "completed", {"fetched": 3})
    rows = wh.query("SELECT status, CAST(counts->>'fetched' AS INT), finished_at >= started_at FROM crawl_runs").rows
    assert rows == [("completed", 3, True)]
    with pytest.raises(WarehouseError, match="no crawl run"):
        wh.finish_run("nope", "failed", {})


def test_sources_upsert_keeps_first_seen(wh) -> None:
    wh.upsert_sources([SourceRow("demo", "h1", "{}")])
    first = wh.query("SELECT first_seen, updated_at FROM sources").rows[0]
    wh.upsert_sources([SourceRow("demo", "h1", "{}")])
    assert wh.query("SELECT first_seen, updated_at FROM sources").rows[0] == first
    wh.upsert_sources([SourceRow("demo", "h2", '{"a": 1}')])
    seen, updated, hash_ = wh.query("SELECT first_seen, updated_at, config_hash FROM sources").rows[0]
    assert seen == first[0] and updated > first[1] and hash_ == "h2"


def test_threads_in_one_process_share_the_file_safely(wh) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def work(worker: int) -> int:
        for i in range(2):
            wh.record_fetches([fetch(f"https://t/{worker}/{i}/{j}", run_id=f"w{worker}") for j in range(5)],
                              revisit_after=DAY)
            assert wh.query("SELECT count(*) % 5 FROM fetches").rows == [(0,)]
        return worker

    with ThreadPoolExecutor(3) as pool:
        assert sorted(pool.map(work, range(3))) == [0, 1, 2]
    assert wh.query("SELECT run_id, count(*) FROM fetches GROUP BY 1 ORDER BY 1").rows == [
        (f"w{n}", 10) for n in range(3)]


def test_a_held_lease_serves_reads_in_process_read_only(tmp_path) -> None:
    from warehouse import QueryError

    from .test_warehouse_support import plain_connect

    wh = Warehouse(tmp_path / "w.duckdb", hold_s=30)
    wh.record_extractions([article(1), article(2)], [])
    assert wh._lease.held                                     # kept between calls
    assert wh.query("SELECT count(*) FROM articles").rows == [(2,)]
    assert [p.url for p in wh.pages_to_extract(source_id=None, extractor_version="x", rules_versions={})] == []
    with pytest.raises(QueryError, match="read-only"):
        wh.query("DELETE FROM articles")
    assert Warehouse(tmp_path / "w.duckdb").query("SELECT count(*) FROM articles").rows == [(2,)]
    wh.record_extractions([article(3)], [])
    wh.release()
    assert not wh._lease.held
    con = plain_connect(tmp_path / "w.duckdb")
    assert con.execute("SELECT count(*) FROM articles").fetchall() == [(3,)]
    con.close()


def test_an_idle_lease_lets_go_by_itself(tmp_path) -> None:
    import time

    wh = Warehouse(tmp_path / "w.duckdb", hold_s=0.2)
    wh.record_extractions([article(1)], [])
    assert wh._lease.held
    deadline = time.monotonic() + 5
    while wh._lease.held and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not wh._lease.held


@pytest.mark.parametrize("step", ["warehouse.fetch_log.upsert_pages", "warehouse.frontier.update_after_fetches"])
def test_a_write_that_raises_mid_batch_stores_nothing_of_it(wh, monkeypatch, step) -> None:
    """Earlier statements of the batch have run when it fails: the transaction must roll them back."""
    import importlib

    wh.record_fetches([fetch("https://d/a/0")], revisit_after=DAY)
    before = dump(wh.path)
    module_name, name = step.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original = getattr(module, name)

    def failing(con, *args, **kwargs):
        original(con, *args, **kwargs)                  # its rows are written inside the transaction, then
        raise RuntimeError("disk hiccup")               # the batch fails before it commits

    monkeypatch.setattr(module, name, failing)
    rows = [fetch(f"https://d/a/{n}", html=f"<p>{n}</p>") for n in range(1, 6)] + [fetch("https://d/a/0", status=304,
                                                                                         fetched_at=T0 + DAY)]
    with pytest.raises(RuntimeError, match="disk hiccup"):
        wh.record_fetches(rows, revisit_after=DAY, discovered=[frontier_row("https://d/a/9")])
    assert dump(wh.path) == before
    monkeypatch.setattr(module, name, original)
    wh.record_fetches(rows, revisit_after=DAY, discovered=[frontier_row("https://d/a/9")])   # the retry goes in whole
    after = dump(wh.path)
    assert len(after["fetches"]) == 7 and len(after["pages"]) == 6 and len(after["frontier"]) == 7


def test_a_failing_extraction_batch_rolls_back_its_articles(wh, monkeypatch) -> None:
    import warehouse.articles as articles

    wh.record_extractions([article(1)], [])
    before = dump(wh.path)

    def failing(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(articles, "_write_extractions", failing)   # after the stored articles were deleted and inserted
    with pytest.raises(RuntimeError):
        wh.record_extractions([article(1, title="new"), article(2)], [])
    assert dump(wh.path) == before


def test_each_warehouse_keeps_its_own_hold(tmp_path) -> None:
    """The connection is shared per file in a process (DuckDB's rule); how long it stays held after a write
    is the writing Warehouse's own, not the first one's made on the path."""
    path = tmp_path / "w.duckdb"
    brief, holding = Warehouse(path), Warehouse(path, hold_s=30)
    assert brief._lease is holding._lease
    holding.record_extractions([article(1)], [])
    assert holding._lease.held
    brief.record_extractions([article(2)], [])
    assert not brief._lease.held                        # hold_s=0: closed at the end of its own call
    holding.record_extractions([article(3)], [])
    assert holding._lease.held
    holding.release()


def test_keys_stay_unique_over_replays_duplicates_and_updates(wh) -> None:
    import random

    rng = random.Random(4)
    for round_ in range(6):
        ids = [rng.randrange(40) for _ in range(60)]                 # repeats inside and across batches
        wh.record_extractions([article(n, title=f"v{round_ % 2}", extracted_at=T0 + timedelta(hours=round_))
                               for n in ids], [rejection(f"https://demo.example/r/{rng.randrange(10)}") for _ in range(8)])
        urls = [f"https://d/a/{rng.randrange(50)}" for _ in range(60)]
        wh.record_fetches([fetch(u, fetched_at=T0 + timedelta(minutes=round_ * 10 + i % 3), html=f"<p>{round_}</p>")
                           for i, u in enumerate(urls)], revisit_after=DAY,
                          discovered=[frontier_row(f"https://d/a/{rng.randrange(80)}") for _ in range(40)])
    for table, key in (("articles", "article_id"), ("extractions", "url"), ("pages", "url"), ("frontier", "url"),
                       ("fetches", "fetch_id")):
        total, distinct = wh.query(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").rows[0]
        assert total == distinct > 0, table


def test_stored_keys_are_the_writers_expressions(wh) -> None:
    """The key columns made by migrations and by every write path agree (batches.KEY_SQL, HEX_KEY_SQL)."""
    wh.record_fetches([fetch("https://d/a/1", html="<p>x</p>"), fetch("https://d/list/1", kind="list")],
                      revisit_after=DAY, discovered=[frontier_row("https://d/a/2")])
    wh.record_extractions([article(1)], [rejection("https://d/a/1")])
    checks = {
        "articles": "article_key = md5_number(article_id) AND row_hash IS NOT NULL",
        "pages": "url_key = md5_number(url) AND html_key = TRY_CAST('0x' || html_hash AS UHUGEINT)",
        "frontier": "url_key = md5_number(url)",
        "extractions": "url_key = md5_number(url)",
    }
    for table, condition in checks.items():
        assert wh.query(f"SELECT bool_and({condition}), count(*) FROM {table}").rows[0][0] is True, table


def test_an_article_stored_before_the_key_migrations_is_recognised_unchanged(tmp_path) -> None:
    """A warehouse at schema 3 (hex row_hash, primary key) migrates; re-extracting the same article is 'unchanged'."""
    from warehouse.articles import row_hashes

    from .test_warehouse_support import plain_connect

    path = tmp_path / "old.duckdb"
    Warehouse(path).migrate(target=3)
    row = article(1)
    text = row.text.encode()
    con = plain_connect(path, read_only=False)
    con.execute(
        "INSERT INTO articles (article_id, source_id, url, page_url, title, author, account, published_at, text, "
        "content_hash, simhash, flags, extractor_version, rules_version, extracted_at, first_seen, updated_at, "
        "seen_seq, row_hash, content_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        [row.article_id, row.source_id, row.url, row.url, row.title, row.author, row.account, row.published_at,
         row.text, row.content_hash, row.simhash, row.flags, row.extractor_version, row.rules_version,
         row.extracted_at, T0, T0, row_hashes([row], [text])[0], int(row.content_hash[:16], 16)])
    con.close()
    wh = Warehouse(path)
    counts = wh.record_extractions([row], [])
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 1)
    assert wh.query("SELECT count(*), min(updated_at) FROM articles").rows == [(1, T0)]


def test_a_failed_statement_surfaces_its_own_error(wh, monkeypatch) -> None:
    """After a SQL error the transaction is aborted; cleaning up must not hide the error behind DuckDB's
    'transaction is aborted' (the next batch starts on a fresh connection)."""
    import duckdb

    import warehouse.articles as articles

    def bad_sql(con, *args, **kwargs):
        con.execute("SELECT no_such_column FROM articles")

    monkeypatch.setattr(articles, "_write_articles", bad_sql)
    with pytest.raises(duckdb.BinderException, match="no_such_column"):
        wh.record_extractions([article(1)], [])
    monkeypatch.undo()
    assert wh.record_extractions([article(1)], []).new == 1


@pytest.mark.parametrize("tight", [True, False])
def test_letting_go_checkpoints_the_file_under_the_cap_or_without_it(tmp_path, monkeypatch, tight) -> None:
    """The closing checkpoint runs under a cap of what DuckDB has pinned plus a little room (flat memory in
    long crawls). A cap DuckDB cannot keep to is lifted, and the close checkpoints as before: nothing is
    lost, no WAL is left."""
    from warehouse import lease

    from .test_warehouse_support import plain_connect

    if not tight:  # neither cap can be kept to
        monkeypatch.setattr(lease, "CHECKPOINT_HEADROOM_BYTES", -(1 << 40))
        monkeypatch.setattr(lease, "CHECKPOINT_MEMORY_LIMIT", "1KB")
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path, hold_s=30)
    wh.record_extractions([article(n) for n in range(1, 400)], [])
    assert path.with_name("w.duckdb.wal").exists()  # held: the batch is in the WAL, not yet checkpointed
    con = wh._lease._con
    with wh._lease.lock:
        pinned = lease._pinned_bytes(con)
        lease._checkpoint_capped(con)
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    if tight:  # kept to: DuckDB's own report of the limit it checkpointed under
        assert not path.with_name("w.duckdb.wal").exists()
        assert 0 < pinned and limit.endswith("MiB")
        assert float(limit.split()[0]) <= (pinned + lease.CHECKPOINT_HEADROOM_BYTES) / 2**20 + 0.1
    wh.release()
    assert not wh._lease.held
    assert not path.with_name("w.duckdb.wal").exists()
    con = plain_connect(path)
    assert con.execute("SELECT count(*) FROM articles").fetchall() == [(399,)]
    con.close()


def test_row_hash_formula_is_unchanged() -> None:
    """`articles.row_hash` is stored: row_hashes must give exactly the documented formula's value for every kind
    of value it meets (naive, UTC and other-zone times, no time, empty content hash, no page_url, a lone surrogate)."""
    import hashlib
    import zlib
    from dataclasses import replace
    from datetime import UTC, datetime, timezone
    from zoneinfo import ZoneInfo

    from warehouse.articles import row_hashes
    from warehouse.batches import utc

    def reference(row, text):
        published = None if row.published_at is None else utc(row.published_at).isoformat()
        meta = (row.source_id, row.url, row.page_url or row.url, row.title, row.author, row.account, published,
                row.content_hash or None, row.simhash & ((1 << 64) - 1), row.flags, len(text), zlib.crc32(text))
        return hashlib.blake2b(repr(meta).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    base = article(1)
    when = datetime(2025, 3, 4, 5, 6, 7, 890)
    rows = [base, replace(base, published_at=None), replace(base, published_at=when),
            replace(base, published_at=when.replace(tzinfo=UTC)),
            replace(base, published_at=when.replace(tzinfo=timezone(timedelta(hours=8)))),
            replace(base, published_at=when.replace(tzinfo=ZoneInfo("UTC"))),
            replace(base, published_at=when.replace(tzinfo=ZoneInfo("Asia/Shanghai"))),
            replace(base, content_hash="", page_url="https://demo.example/page", title=None, author="'\"\\"),
            replace(base, simhash=-5, text="孤\ud800立", flags="x,y")]
    texts = [r.text.encode("utf-8", "surrogatepass") for r in rows]
    assert row_hashes(rows, texts) == [reference(r, t) for r, t in zip(rows, texts, strict=True)]


def test_an_unchanged_article_re_extracted_keeps_its_past_and_takes_the_new_versions(wh) -> None:
    """Unchanged (same row_hash): updated in place; only extractor_version, rules_version and extracted_at are
    the batch's, everything else (text, dup_of, first_seen, updated_at, seen_seq) is as stored."""
    from dataclasses import replace

    original, copy = article(1), replace(article(2), text=article(1).text, content_hash=article(1).content_hash)
    wh.record_extractions([original, copy, article(3)], [])
    columns = "article_id, text, dup_of, first_seen, updated_at, seen_seq, row_hash, content_key, article_key, title"
    before = wh.query(f"SELECT {columns} FROM articles ORDER BY article_id").rows
    later = T0 + timedelta(days=3)
    again = [replace(r, extractor_version="x2", rules_version="r2", extracted_at=later) for r in (copy, article(3))]
    counts = wh.record_extractions(again, [])
    assert (counts.new, counts.updated, counts.unchanged, counts.duplicates) == (0, 0, 2, 0)
    assert wh.query(f"SELECT {columns} FROM articles ORDER BY article_id").rows == before
    assert wh.query("SELECT article_id, extractor_version, rules_version, extracted_at FROM articles "
                    "ORDER BY article_id").rows == [("a0000001", "x1", "r1", T0), ("a0000002", "x2", "r2", later),
                                                    ("a0000003", "x2", "r2", later)]
    assert dict(wh.query("SELECT article_id, dup_of FROM articles").rows)["a0000002"] == "a0000001"
    assert wh.query("SELECT count(*) FROM extractions WHERE extractor_version = 'x2'").rows == [(2,)]


def test_an_extraction_row_is_replaced_whole_when_its_page_changes_outcome(wh) -> None:
    """Stored extraction rows are updated in place: every column but the URL is the latest outcome's."""
    from dataclasses import replace

    page = "https://demo.example/a/1.html"
    columns = "url, outcome, article_id, reason, extractor_version, html_hash"
    wh.record_extractions([replace(article(1), html_hash="a" * 32)], [])
    assert wh.query(f"SELECT {columns} FROM extractions").rows == [(page, "article", "a0000001", None, "x1", "a" * 32)]
    wh.record_extractions([], [replace(rejection(page, extractor_version="x2"), html_hash="b" * 32)])
    assert wh.query(f"SELECT {columns} FROM extractions").rows == [(page, "rejected", None, "too_short", "x2", "b" * 32)]
    wh.record_extractions([replace(article(1), html_hash="c" * 32), replace(article(2), html_hash="d" * 32)], [])
    assert wh.query(f"SELECT {columns} FROM extractions ORDER BY url").rows == [
        (page, "article", "a0000001", None, "x1", "c" * 32),
        ("https://demo.example/a/2.html", "article", "a0000002", None, "x1", "d" * 32)]
