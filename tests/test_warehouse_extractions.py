"""Articles: duplicate folding (exact and near), updates, and which pages need extracting again."""
from __future__ import annotations

from datetime import timedelta

import pytest

from warehouse import Warehouse

from .test_warehouse_support import T0, article, fetch, rejection

BASE = 0x0123_4567_89AB_CDEF


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "w.duckdb")


def _dup_of(wh: Warehouse) -> dict[str, str | None]:
    return dict(wh.query("SELECT article_id, dup_of FROM articles").rows)


def test_exact_and_near_duplicates_fold_into_the_first_seen(wh) -> None:
    same = "同一篇文章被转载。" * 30
    batch = [
        article(1, text=same, simhash=BASE),
        article(2, text=same, simhash=BASE),                       # exact copy of 1
        article(3, text="改了一个字。" + same, simhash=BASE ^ 0b111),  # near: 3 bits away
        article(4, text="别的文章。" * 30, simhash=BASE ^ 0xF0F0),   # 8 bits away: distinct
        article(5, text="又一篇。" * 30, simhash=BASE ^ 0xFF << 40),  # far
    ]
    counts = wh.record_extractions(batch, [])
    assert (counts.new, counts.duplicates) == (5, 2)
    assert _dup_of(wh) == {"a0000001": None, "a0000002": "a0000001", "a0000003": "a0000001",
                           "a0000004": None, "a0000005": None}

    # A later batch: an exact copy of 4, a near copy of 5, and a copy of a copy still points at the root.
    later = [
        article(6, text=batch[3].text, simhash=0),
        article(7, text="第七篇。" * 30, simhash=(BASE ^ 0xFF << 40) ^ 1),
        article(8, text=batch[1].text, simhash=BASE ^ 1),
    ]
    counts = wh.record_extractions(later, [])
    assert (counts.new, counts.duplicates) == (3, 3)
    assert {k: v for k, v in _dup_of(wh).items() if k >= "a0000006"} == {
        "a0000006": "a0000004", "a0000007": "a0000005", "a0000008": "a0000001"}
    rows = wh.query("SELECT article_id, copies FROM v_articles ORDER BY article_id").rows
    assert rows == [("a0000001", 4), ("a0000004", 2), ("a0000005", 2)]


def test_batch_order_decides_which_copy_is_first(wh) -> None:
    text = "顺序决定谁是原文。" * 20
    wh.record_extractions([article(9, text=text), article(3, text=text), article(5, text=text)], [])
    assert _dup_of(wh) == {"a0000009": None, "a0000003": "a0000009", "a0000005": "a0000009"}


def test_updates_change_updated_at_only_when_content_changes(wh) -> None:
    wh.record_extractions([article(1), article(2)], [])
    before = dict((r[0], r[1:]) for r in wh.query("SELECT article_id, first_seen, updated_at FROM articles").rows)
    later = T0 + timedelta(hours=2)
    counts = wh.record_extractions([
        article(1, title="新标题", extracted_at=later, extractor_version="x2"),
        article(2, extracted_at=later, extractor_version="x2"),
    ], [])
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 1)
    after = dict((r[0], r[1:]) for r in wh.query(
        "SELECT article_id, first_seen, updated_at, title, extractor_version FROM articles").rows)
    assert after["a0000001"] == (before["a0000001"][0], later, "新标题", "x2")
    assert after["a0000002"] == (*before["a0000002"], "标题 2", "x2")


def test_an_original_that_becomes_a_copy_takes_its_copies_along(wh) -> None:
    wh.record_extractions([article(1), article(2, text="独立的文章。" * 30), article(3, text="独立的文章。" * 30)], [])
    assert _dup_of(wh)["a0000003"] == "a0000002"
    wh.record_extractions([article(2, text=article(1).text)], [])        # 2 now repeats 1
    assert _dup_of(wh) == {"a0000001": None, "a0000002": "a0000001", "a0000003": "a0000001"}


def _pages(wh: Warehouse, **kw) -> list[str]:
    args = {"source_id": None, "extractor_version": "x1", "rules_versions": {"demo": "r1", "other": "q1"}}
    args.update(kw)
    return [p.url for p in wh.pages_to_extract(**args)]


def test_pages_to_extract_follows_versions_and_html(wh) -> None:
    urls = [f"https://demo.example/a/{n}" for n in range(1, 5)]
    wh.record_fetches([fetch(u, html=f"<p>{u}</p>") for u in urls]
                      + [fetch("https://demo.example/list/1", kind="list"),
                         fetch("https://other.example/a/1", source="other")], revisit_after=timedelta(days=1))
    assert _pages(wh) == sorted(urls + ["https://other.example/a/1"])
    assert _pages(wh, source_id="demo", limit=2) == urls[:2]
    assert _pages(wh, source_id="demo", after_url=urls[1]) == urls[2:]
    page = wh.pages_to_extract(source_id="demo", extractor_version="x1", rules_versions={}, limit=1)[0]
    assert (page.url, page.html, page.source_id, page.kind) == (urls[0], f"<p>{urls[0]}</p>", "demo", "article")
    assert len(page.html_hash) == 32 and page.fetched_at == T0

    # Extracting (article or rejection) makes a page current.
    wh.record_extractions([_from_page(article(1), urls[0]), _from_page(article(2), urls[1])],
                          [rejection(urls[2])])
    assert _pages(wh, source_id="demo") == [urls[3]]
    assert _pages(wh, source_id="demo", only_stale=False) == urls

    # New extractor version: all stale. New rules for one source: only that source's pages.
    assert _pages(wh, source_id="demo", extractor_version="x2") == urls
    assert _pages(wh, rules_versions={"demo": "r2"}) == urls + ["https://other.example/a/1"]
    wh.record_extractions([], [rejection("https://other.example/a/1", source="other", rules_version="q1")])
    assert _pages(wh, rules_versions={"demo": "r1", "other": "q2"}) == [urls[3], "https://other.example/a/1"]

    # The page changed on a later fetch: stale again.
    wh.record_fetches([fetch(urls[0], html="<p>edited</p>", fetched_at=T0 + timedelta(days=1))],
                      revisit_after=timedelta(days=1))
    assert _pages(wh, source_id="demo") == [urls[0], urls[3]]


def _from_page(row, page_url):
    from dataclasses import replace

    return replace(row, page_url=page_url)


def _brute_batch_candidates(batch, targets):
    """The rule of duplicates._batch_candidates by brute force over every pair (distance <= 3 implies a
    shared 16-bit band, so the bands are left out)."""
    from warehouse.duplicates import NEAR_DISTANCE

    best = {}
    for t in targets:
        options = []
        for p in batch:
            if p.seen_seq >= t.seen_seq:
                continue
            dup = None if p.changed else p.stored_dup_of
            if t.content_key is not None and p.content_key == t.content_key and p.content_hash == t.content_hash:
                options.append((-1, p.seen_seq, p.article_id, dup))
            dist = (p.simhash ^ t.simhash).bit_count()
            if t.simhash and p.simhash and dist <= NEAR_DISTANCE and (p.changed or p.stored_dup_of is None):
                options.append((dist, p.seen_seq, p.article_id, dup))
        if options:
            best[t.idx] = min(options, key=lambda o: o[:2])
    return best


@pytest.mark.parametrize("seed", range(6))
def test_batch_candidates_match_the_rule_by_brute_force(seed) -> None:
    import random

    from warehouse.duplicates import BatchArticle, _batch_candidates

    rng = random.Random(seed)
    bases = [rng.getrandbits(64) for _ in range(6)] + [0]
    batch = []
    for i in range(rng.choice([5, 60, 400])):
        sim = rng.choice(bases)
        for _ in range(rng.randrange(6) if sim else 0):
            sim ^= 1 << rng.randrange(64)
        body = rng.randrange(12)
        content = None if body == 0 else f"{body:016x}" + ("x" if rng.random() < 0.1 else "")  # same key, other hash
        batch.append(BatchArticle(idx=i, article_id=f"a{i}", seen_seq=3 * i + rng.randrange(3),
                                  content_key=None if content is None else body, content_hash=content, simhash=sim,
                                  existed=rng.random() < 0.5, changed=rng.random() < 0.7,
                                  stored_dup_of=rng.choice([None, None, "s1", "s2"])))
    targets = [row for row in batch if row.changed]
    assert _batch_candidates(batch, targets) == _brute_batch_candidates(batch, targets)


def _model_batch(state: dict, rows: list) -> None:
    """The duplicate rule (duplicates.py docstring) applied to one batch, on {article_id: dict}."""
    from warehouse.duplicates import NEAR_DISTANCE

    rows = list({r.article_id: r for r in rows}.values())
    top = max((a["seq"] for a in state.values()), default=0)
    batch = {}
    for idx, r in enumerate(rows):
        old = state.get(r.article_id)
        changed = old is None or (old["row"].text, old["row"].simhash) != (r.text, r.simhash)
        batch[r.article_id] = {"row": r, "seq": old["seq"] if old else top + idx + 1, "changed": changed,
                               "existed": old is not None, "dup_of": None if old is None else old["dup_of"]}
    others = {k: v for k, v in state.items() if k not in batch}
    resolved: dict = {}
    for aid, t in sorted(((k, v) for k, v in batch.items() if v["changed"]), key=lambda kv: kv[1]["seq"]):
        exact, near = [], []
        for pid, p in list(others.items()) + list(batch.items()):
            if pid == aid or p["seq"] >= t["seq"]:
                continue
            in_batch = pid in batch and p["changed"]
            if p["row"].content_hash == t["row"].content_hash:
                exact.append((p["seq"], pid, in_batch, p["dup_of"]))
            dist = (p["row"].simhash ^ t["row"].simhash).bit_count()
            if t["row"].simhash and p["row"].simhash and dist <= NEAR_DISTANCE and (in_batch or p["dup_of"] is None):
                near.append((dist, p["seq"], pid, in_batch, p["dup_of"]))
        if exact:
            _, cand, in_batch, cand_dup = min(exact)
        elif near:
            _, _, cand, in_batch, cand_dup = min(near)
        else:
            resolved[aid] = None
            continue
        resolved[aid] = (resolved.get(cand) or cand) if in_batch else (cand_dup or cand)
    for aid, v in batch.items():
        state[aid] = {"row": v["row"], "seq": v["seq"], "dup_of": resolved[aid] if v["changed"] else v["dup_of"]}
    moved = {aid: resolved[aid] for aid, v in batch.items() if v["changed"] and v["existed"] and resolved[aid]}
    for a in state.values():
        if a["dup_of"] in moved:
            a["dup_of"] = moved[a["dup_of"]]


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_fold_as_the_rule_says(tmp_path, seed) -> None:
    import random
    from dataclasses import replace

    rng = random.Random(seed)
    wh = Warehouse(tmp_path / "w.duckdb")
    bodies = [f"正文{k}。" * 30 for k in range(10)]
    bases = [BASE ^ (k << 20) for k in range(4)] + [0]
    state: dict = {}
    for n in range(14):
        rows = []
        for _ in range(rng.randrange(1, 25)):
            i = rng.randrange(50)
            old = state.get(f"a{i:07d}")
            if old is not None and rng.random() < 0.4:  # sent again unchanged (a new extractor version)
                rows.append(replace(old["row"], extractor_version=f"x{n}"))
                continue
            sim = rng.choice(bases)
            for _ in range(rng.randrange(5) if sim else 0):
                sim ^= 1 << rng.randrange(64)
            rows.append(article(i, text=rng.choice(bodies) + ("" if rng.random() < 0.5 else f"{rng.randrange(9)}"),
                                simhash=sim))
        wh.record_extractions(rows, [])
        _model_batch(state, rows)
        assert _dup_of(wh) == {k: v["dup_of"] for k, v in state.items()}, f"batch {n}"
        stored = dict(wh.query("SELECT article_id, seen_seq FROM articles").rows)
        assert stored == {k: v["seq"] for k, v in state.items()}


@pytest.mark.parametrize("in_place", [True, False], ids=["updated-in-place", "deleted-and-inserted"])
def test_both_ways_of_replacing_extraction_rows_store_the_latest_outcomes(tmp_path, monkeypatch, in_place) -> None:
    """Batches under EXTRACTIONS_IN_PLACE_ROWS delete and insert their pages' rows, larger ones update them
    in place: either way each page keeps one row, its latest outcome's, and its key."""
    from dataclasses import replace

    from warehouse import articles as articles_module

    monkeypatch.setattr(articles_module, "EXTRACTIONS_IN_PLACE_ROWS", 0 if in_place else 10**9)
    wh = Warehouse(tmp_path / "w.duckdb")
    page = "https://demo.example/a/1.html"
    wh.record_extractions([replace(article(1), html_hash="a" * 32), article(2)], [rejection("https://d/r")])
    wh.record_extractions([], [replace(rejection(page, extractor_version="x2"), html_hash="b" * 32)])
    wh.record_extractions([replace(article(1), html_hash="c" * 32), article(3)],
                          [rejection("https://d/r", reason="empty"), rejection("https://d/s")])
    wh.record_extractions([replace(article(2), extractor_version="x3"), article(3)], [])   # a new version, a replay
    assert wh.query("SELECT url, outcome, article_id, reason, extractor_version, url_key = md5_number(url) "
                    "FROM extractions ORDER BY url").rows == [
        ("https://d/r", "rejected", None, "empty", "x1", True),
        ("https://d/s", "rejected", None, "too_short", "x1", True),
        (page, "article", "a0000001", None, "x1", True),
        ("https://demo.example/a/2.html", "article", "a0000002", None, "x3", True),
        ("https://demo.example/a/3.html", "article", "a0000003", None, "x1", True)]
    assert wh.query(f"SELECT html_hash FROM extractions WHERE url = '{page}'").rows == [("c" * 32,)]
