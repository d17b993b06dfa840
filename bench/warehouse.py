"""Warehouse: upsert forms side by side, the writer at realistic shapes, bulk load, and queries.

Parts (`--parts`, all by default), every contender measured in the same run, runs interleaved:
- forms: the four upsert forms on duckdb (ON CONFLICT DO UPDATE, MERGE INTO, delete + insert, insert of
  an anti-join plus UPDATE of the changed rows), with and without a primary-key index, on an
  articles-shaped table of --table-rows rows (~3 KB zstd text), batches half new and half changed
  (de-duplicated first, as the writer does). Each form must stay idempotent: the last batch applied
  again changes nothing, and no key is stored twice.
- extractions: `Warehouse.record_extractions` (everything it does: Arrow batch in Python, exact and
  near-duplicate folding against the stored articles, the articles and extractions upserts) on a
  warehouse of --table-rows articles with their pages and extraction rows, file held (hold_s=2, as the
  crawl does); batches half new and half stored, the stored half changed, or unchanged but re-extracted.
- fetches: `Warehouse.record_fetches` (fetch log, pages, frontier, discovered URLs in one transaction)
  in the streaming pipeline's commit windows (100 rows, about 1 s of crawl; 500 rows); 80% articles with
  ~20 KB HTML, half of them revisits, 10% list pages with 20 links each, 10% failures.
- load: 100,000 new articles into a fresh file in batches of 100, 1,000, 5,000, file opened per call
  (hold_s=0) and held (hold_s=2).
- queries: the file grown to 1,000,000 articles with plain SQL, each query via `Warehouse.query` (the
  `sieve sql` path: a fresh sandboxed read-only connection) and on one open connection.
The template warehouse for extractions and fetches is 20,000 articles written by sieve's own writer,
grown tenfold with plain SQL (pages there hold ~4 KB of HTML to keep the file small).

    python -m bench.warehouse [--quick] [--parts forms,extractions,fetches,load,queries] [--runs 3]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import OUT, median, spread, table, verdict, write_json

TARGET_ROWS_PER_S = 20_000
SMALL_BATCH_ROWS = 20_000
SOURCES = ("juredian", "demo", "toutiao_mirror", "wechat_digest", "news_hub")
KEYWORD = "量子纠缠咖啡"   # planted in 1% of texts: the LIKE search's needle
_CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
BASE_ROWS = 20_000       # the template's rows written through the real writer (the rest are SQL copies)


def _paragraph_pool(rng: random.Random, n: int = 4000) -> list[str]:
    pool = []
    for _ in range(n):
        words = "".join(rng.choices(_CJK, k=rng.randint(60, 180)))
        cut = sorted(rng.sample(range(1, len(words)), 3))
        pool.append(words[: cut[0]] + "," + words[cut[0]: cut[1]] + "、" + words[cut[1]: cut[2]] + "," + words[cut[2]:] + "。")
    return pool


def synthetic_articles(n: int, seed: int = 11) -> list[Any]:
    """n ArticleRows (~1,000 Chinese characters, 5% exact and 3% near copies); deterministic for a seed."""
    from warehouse import ArticleRow

    rng = random.Random(seed)
    pool = _paragraph_pool(rng)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        source = SOURCES[i % len(SOURCES)]
        copy_roll = rng.random()
        if rows and copy_roll < 0.05:          # exact copy republished under another URL
            orig = rows[rng.randrange(len(rows))]
            text, content, sim = orig.text, orig.content_hash, orig.simhash
        elif rows and copy_roll < 0.08:        # near copy: one edit, simhash 1-2 bits away
            orig = rows[rng.randrange(len(rows))]
            text = orig.text + "转载时略有删改。"
            content = hashlib.sha256(text.encode()).hexdigest()
            sim = orig.simhash ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64))
        else:
            paragraphs = [f"这是第{i}篇文章。"] + rng.sample(pool, rng.randint(6, 10))
            if rng.random() < 0.01:
                paragraphs.insert(2, f"据说{KEYWORD}是今年最火的饮品。")
            text = "\n".join(paragraphs)
            content = hashlib.sha256(text.encode()).hexdigest()
            sim = rng.getrandbits(64)
        published = start + timedelta(days=rng.randrange(365), minutes=rng.randrange(1440))
        url = f"https://{source}.example.com/news/{published:%Y%m%d}/{i}.html"
        rows.append(ArticleRow(
            article_id=hashlib.sha256(url.encode()).hexdigest()[:20], source_id=source, url=url,
            title=f"标题{i}:{text[8:24]}", author=rng.choice([None, "李静", "toby", "陈一"]),
            account=rng.choice([None, "群响日记", "生活研究所"]), published_at=published if rng.random() < 0.8 else None,
            text=text, content_hash=content, simhash=sim, flags="", extractor_version="bench", rules_version="bench",
            extracted_at=published + timedelta(hours=rng.randrange(1, 48)),
        ))
    return rows


def page_fetches(articles: list[Any], fetched_at: datetime, html_bytes: int) -> list[Any]:
    """A successful fetch of each article's page, HTML padded with chrome to about `html_bytes`."""
    from warehouse import FetchRow

    chrome = "<div class='side'>" + "<a href='/news/x.html'>热博 相关阅读</a>" * 40 + "</div>"
    rows = []
    for a in articles:
        body = f"<html><head><title>{a.title}</title></head><body><h1>{a.title}</h1><p>{a.text}</p>"
        pad = max(0, html_bytes - len(body.encode()))
        html = body + chrome * (1 + pad // len(chrome.encode())) + "</body></html>"
        rows.append(FetchRow(run_id="bench", source_id=a.source_id, url=a.url, kind="article", final_url=a.url, status=200,
                             error=None, detail="", content_type="text/html; charset=utf-8", nbytes=len(html), elapsed_ms=20,
                             encoding="utf-8", replaced=False, attempts=1, etag=None, last_modified=None,
                             fetched_at=fetched_at, html=html))
    return rows


def _warehouse(path: Path, hold_s: float) -> Any:
    from warehouse import Warehouse

    return Warehouse(path, hold_s=hold_s)


def _unlink(path: Path) -> None:
    for p in (path, Path(str(path) + ".wal")):
        p.unlink(missing_ok=True)


def _load_now() -> float:
    return round(os.getloadavg()[0], 2)


# --- load: fresh file, new articles only ---------------------------------------------------------
def load(path: Path, rows: list[Any], batch: int, hold_s: float = 0.0) -> dict[str, Any]:
    wh = _warehouse(path, hold_s)
    wh.migrate()
    calls = []
    start = time.perf_counter()
    totals = {"new": 0, "duplicates": 0}
    for i in range(0, len(rows), batch):
        t0 = time.perf_counter()
        counts = wh.record_extractions(rows[i: i + batch], [])
        calls.append(time.perf_counter() - t0)
        totals["new"] += counts.new
        totals["duplicates"] += counts.duplicates
    wh.release()   # a held file is checkpointed on release: part of the load's cost
    wall = time.perf_counter() - start
    third = max(1, len(calls) // 3)
    return {"wall_s": round(wall, 3), "rows_per_s": round(len(rows) / wall, 1), **totals,
            "first_third_ms_per_call": round(1000 * median(calls[:third]), 2),
            "last_third_ms_per_call": round(1000 * median(calls[-third:]), 2)}


def bench_load(rows: list[Any], batches: list[int], runs: int, scratch: Path,
               small_batch_rows: int = SMALL_BATCH_ROWS, holds: tuple[float, ...] = (0.0, 2.0)) -> list[dict[str, Any]]:
    outs: dict[tuple[int, float], list[dict[str, Any]]] = {}
    for _ in range(runs):                  # interleaved: every contender once per round
        for batch, hold_s in [(b, h) for b in batches for h in holds]:
            # small batches are slow per row: they load the first small_batch_rows rows only (stated in the table)
            path = scratch / f"load-{batch}-{hold_s}.duckdb"
            outs.setdefault((batch, hold_s), []).append(load(path, rows if batch >= 1000 else rows[:small_batch_rows], batch, hold_s))
            _unlink(path)
    results = []
    for (batch, hold_s), found in outs.items():
        rates = [o["rows_per_s"] for o in found]
        results.append({"batch": batch, "hold_s": hold_s, "rows": len(rows) if batch >= 1000 else min(len(rows), small_batch_rows),
                        "runs": runs, "rows_per_s": round(median(rates), 1), "min_max": [round(v, 1) for v in spread(rates)],
                        "wall_s": round(median([o["wall_s"] for o in found]), 3), "duplicates_folded": found[0]["duplicates"],
                        "first_third_ms_per_call": found[0]["first_third_ms_per_call"],
                        "last_third_ms_per_call": found[0]["last_third_ms_per_call"]})
        print(f"  load batch {batch}, hold_s {hold_s}: {results[-1]['rows_per_s']:,.0f} rows/s", flush=True)
    return results


# --- the template: a warehouse of N articles with pages, extractions and frontier rows -------------
def grow(path: Path, factor: int) -> int:
    """Make `factor` variants of every article, page, extraction and frontier row with plain DuckDB (a bench
    shortcut: far apart simhashes and distinct hashes, so the copies are new articles, not duplicates).
    Key columns are filled the way the writer fills them, where the schema has them."""
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("SET enable_progress_bar = false")
    v = "|| '?v=' || k"
    days = "to_days(CAST(k * 37 AS INTEGER))"
    variants = {
        "articles": {"article_id": "article_id || '-' || k", "url": f"url {v}", "page_url": f"page_url {v}",
                     "published_at": f"published_at - {days}", "text": "'第' || k || '版 ' || text",
                     "content_hash": "md5(content_hash || k)", "simhash": "xor(simhash, hash(k, article_id))",
                     "dup_of": "NULL", "extracted_at": f"extracted_at - {days}", "first_seen": f"first_seen - {days}",
                     "updated_at": f"updated_at - {days}", "seen_seq": "seen_seq + k * 10000000",
                     "row_hash": "md5_number(row_hash::VARCHAR || k)",
                     "content_key": "('0x' || left(md5(content_hash || k), 16))::UBIGINT",
                     "article_key": "md5_number(article_id || '-' || k)"},
        "pages": {"url": f"url {v}", "html_hash": "md5(html_hash || k)", "url_key": f"md5_number(url {v})",
                  "html_key": "TRY_CAST('0x' || md5(html_hash || k) AS UHUGEINT)"},
        "extractions": {"url": f"url {v}", "article_id": "article_id || '-' || k", "html_hash": "md5(html_hash || k)",
                        "url_key": f"md5_number(url {v})"},
        "frontier": {"url": f"url {v}", "seq": "seq + k * 10000000", "url_key": f"md5_number(url {v})"},
    }
    try:
        con.execute("BEGIN")
        for name, replaced in variants.items():
            columns = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                                 [name]).fetchall()}
            exprs = ", ".join(f"{expr} AS {col}" for col, expr in replaced.items() if col in columns)
            con.execute(f"INSERT INTO {name} SELECT {name}.* REPLACE ({exprs}) FROM {name} CROSS JOIN range(1, {factor}) r(k)")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return int(con.execute("SELECT count(*) FROM articles").fetchall()[0][0])
    finally:
        con.close()


def build_template(path: Path, base: list[Any], table_rows: int) -> int:
    """BASE_ROWS articles with their pages through sieve's writer, grown to about `table_rows`."""
    wh = _warehouse(path, 5.0)
    fetched = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(0, len(base), 2000):
        wh.record_fetches(page_fetches(base[i: i + 2000], fetched, 4000), revisit_after=timedelta(days=1))
        wh.record_extractions(base[i: i + 2000], [])
    wh.release()
    return grow(path, max(1, round(table_rows / len(base))))


def _rounds(label: str, contenders: dict[str, Callable[[], dict[str, Any]]], runs: int) -> dict[str, list[dict[str, Any]]]:
    """Run every contender once per round, `runs` rounds (interleaved, so load drifts hit all alike)."""
    outs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for run in range(runs):
        for name, fn in contenders.items():
            outs[name].append(fn())
            print(f"  {label} {name} run {run + 1}: {outs[name][-1]['rows_per_s']:,.0f} rows/s (load {_load_now()})", flush=True)
    return outs


def _summary(outs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    rates = [o["rows_per_s"] for o in outs]
    keys = {k for o in outs for k in o if k not in ("rows_per_s",) and isinstance(o[k], (int, float))}
    return {**extra, "runs": len(outs), "rows_per_s": round(median(rates), 1), "min_max": [round(v) for v in spread(rates)],
            **{k: round(median([o[k] for o in outs if k in o]), 2) for k in sorted(keys)}}


# --- forms: the upsert statements alone ------------------------------------------------------------
_FORM_COLS = ("id", "source_id", "url", "title", "text", "content_key", "simhash", "row_hash", "seen_seq")
_SET = ", ".join(f"{c} = b.{c}" for c in _FORM_COLS[1:])
FORMS: dict[str, tuple[bool, list[str]]] = {      # name -> (primary key?, statements with the batch as `b`)
    "ON CONFLICT DO UPDATE": (True, ["INSERT INTO t SELECT * FROM b ON CONFLICT (id) DO UPDATE SET "
                                     + ", ".join(f"{c} = excluded.{c}" for c in _FORM_COLS[1:])]),
    "MERGE INTO": (True, [f"MERGE INTO t USING b ON t.id = b.id WHEN MATCHED THEN UPDATE SET {_SET} "
                          "WHEN NOT MATCHED THEN INSERT BY NAME"]),
    "MERGE INTO, no key": (False, [f"MERGE INTO t USING b ON t.id = b.id WHEN MATCHED THEN UPDATE SET {_SET} "
                                   "WHEN NOT MATCHED THEN INSERT BY NAME"]),
    "delete + insert": (True, ["DELETE FROM t WHERE id IN (SELECT id FROM b)", "INSERT INTO t SELECT * FROM b"]),
    "delete + insert, no key": (False, ["DELETE FROM t WHERE id IN (SELECT id FROM b)", "INSERT INTO t SELECT * FROM b"]),
    "anti-join insert + update": (True, ["INSERT INTO t SELECT b.* FROM b ANTI JOIN t USING (id)",
                                         f"UPDATE t SET {_SET} FROM b WHERE t.id = b.id AND t.row_hash IS DISTINCT FROM b.row_hash"]),
    "anti-join insert + update, no key": (False, ["INSERT INTO t SELECT b.* FROM b ANTI JOIN t USING (id)",
                                                  f"UPDATE t SET {_SET} FROM b WHERE t.id = b.id "
                                                  "AND t.row_hash IS DISTINCT FROM b.row_hash"]),
}


def _form_batch(ids: list[int], version: int, pool: list[str]) -> Any:
    import pyarrow as pa

    return pa.table({"id": [f"id{i:09d}" for i in ids], "source_id": ["demo"] * len(ids),
                     "url": [f"https://demo.example/{i}.html" for i in ids], "title": [f"标题{i}-{version}" for i in ids],
                     "text": [pool[(i + version) % len(pool)] + str(version) for i in ids],
                     "content_key": pa.array([hash((i, version)) & (2**63 - 1) for i in ids], pa.uint64()),
                     "simhash": pa.array([hash((version, i)) & (2**64 - 1) for i in ids], pa.uint64()),
                     "row_hash": [f"h{i}-{version}" for i in ids], "seen_seq": pa.array(ids, pa.int64())})


def _form_tables(scratch: Path, table_rows: int, pool: list[str]) -> dict[bool, Path]:
    import duckdb

    files = {}
    for pk in (True, False):
        path = files[pk] = scratch / f"forms-{'key' if pk else 'nokey'}.duckdb"
        con = duckdb.connect(str(path))
        con.execute(f"""CREATE TABLE t (id VARCHAR {'PRIMARY KEY' if pk else 'NOT NULL'}, source_id VARCHAR NOT NULL,
            url VARCHAR, title VARCHAR, text VARCHAR USING COMPRESSION zstd, content_key UBIGINT, simhash UBIGINT,
            row_hash VARCHAR, seen_seq BIGINT)""")
        for i in range(0, table_rows, 20_000):
            con.register("b", _form_batch(list(range(i, min(table_rows, i + 20_000))), 0, pool))
            con.execute("INSERT INTO t SELECT * FROM b")
        con.execute("CHECKPOINT")
        con.close()
    return files


def run_form(template: Path, scratch: Path, statements: list[str], batches: list[Any], table_rows: int) -> dict[str, Any]:
    import duckdb

    path = scratch / "form.duckdb"
    shutil.copy(template, path)
    con = duckdb.connect(str(path))
    con.execute("SET enable_progress_bar = false")
    con.execute("SET checkpoint_threshold = '512MB'")   # as the writer's lease: no checkpoint mid-load
    try:
        start = time.perf_counter()
        for b in batches:
            con.register("b", b)
            con.execute("BEGIN")
            for sql in statements:
                con.execute(sql)
            con.execute("COMMIT")
        wall = time.perf_counter() - start
        rows = sum(b.num_rows for b in batches)
        state = con.execute("SELECT count(*), count(DISTINCT id), sum(hash(id, title, row_hash)) FROM t").fetchall()[0]
        con.execute("BEGIN")                             # idempotent: the last batch again changes nothing
        for sql in statements:
            con.execute(sql)
        con.execute("COMMIT")
        again = con.execute("SELECT count(*), count(DISTINCT id), sum(hash(id, title, row_hash)) FROM t").fetchall()[0]
        expected = table_rows + sum(b.num_rows for b in batches) // 2
        ok = state[0] == state[1] == expected and again == state
        return {"rows_per_s": round(rows / wall, 1), "ms_per_batch": round(1000 * wall / len(batches), 2), "idempotent": ok}
    finally:
        con.close()
        _unlink(path)


def bench_forms(scratch: Path, table_rows: int, batches: list[int], total: int, runs: int) -> list[dict[str, Any]]:
    rng = random.Random(5)
    pool = _paragraph_pool(rng, 300)
    pool = ["\n".join(rng.sample(pool, 8)) for _ in range(300)]           # ~3 KB of UTF-8 each
    templates = _form_tables(scratch, table_rows, pool)
    results = []
    for batch in batches:
        fresh = iter(range(table_rows, table_rows + total))
        work = []
        for k in range(max(1, total // batch)):           # half changed stored rows, half new; no key twice
            work.append(_form_batch(rng.sample(range(table_rows), batch // 2) + [next(fresh) for _ in range(batch - batch // 2)],
                                    k + 1, pool))
        contenders = {name: (lambda pk=pk, sql=sql, work=work: run_form(templates[pk], scratch, sql, work, table_rows))
                      for name, (pk, sql) in FORMS.items()}
        for name, outs in _rounds(f"forms batch {batch:,}", contenders, runs).items():
            results.append(_summary(outs, form=name, batch=batch, key=FORMS[name][0], rows=sum(b.num_rows for b in work),
                                    idempotent=all(o["idempotent"] for o in outs)))
    return results


# --- extractions and fetches through the Warehouse ---------------------------------------------------
def run_extractions(template: Path, scratch: Path, work: list[list[Any]]) -> dict[str, Any]:
    path = scratch / "extract.duckdb"
    shutil.copy(template, path)
    try:
        wh = _warehouse(path, 2.0)
        wh.migrate()
        start = time.perf_counter()
        for batch in work:
            wh.record_extractions(batch, [])
        calls = time.perf_counter() - start
        wh.release()
        wall = time.perf_counter() - start
        rows = sum(len(b) for b in work)
        return {"rows_per_s": round(rows / calls, 1), "rows_per_s_with_release": round(rows / wall, 1),
                "ms_per_batch": round(1000 * calls / len(work), 2), "release_s": round(wall - calls, 3)}
    finally:
        _unlink(path)


def bench_extractions(template: Path, scratch: Path, base: list[Any], fresh: list[Any], batches: list[int], total: int,
                      runs: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    results = []
    for batch in batches:
        for mix in ("half new, half changed", "half new, half unchanged"):
            new_rows = iter(fresh)
            work = []
            for k in range(max(1, total // batch)):
                stored = rng.sample(base, batch // 2)
                if mix.endswith("changed"):
                    stored = [replace(a, text=a.text + f"更新{k}", content_hash=hashlib.sha256(f"{a.content_hash}{k}".encode()).hexdigest())
                              for a in stored]
                else:
                    stored = [replace(a, extractor_version=f"bench{k + 1}") for a in stored]
                work.append(stored + [next(new_rows) for _ in range(batch - batch // 2)])
            outs = _rounds(f"record_extractions batch {batch:,} ({mix})",
                           {"sieve": lambda work=work: run_extractions(template, scratch, work)}, runs)["sieve"]
            results.append(_summary(outs, batch=batch, mix=mix, rows=sum(len(b) for b in work)))
    return results


def run_fetches(template: Path, scratch: Path, windows: list[tuple[list[Any], list[Any]]]) -> dict[str, Any]:
    path = scratch / "fetch.duckdb"
    shutil.copy(template, path)
    try:
        wh = _warehouse(path, 2.0)
        wh.migrate()
        start = time.perf_counter()
        for rows, found in windows:
            wh.record_fetches(rows, revisit_after=timedelta(hours=24), discovered=found)
        calls = time.perf_counter() - start
        wh.release()
        n = sum(len(rows) for rows, _ in windows)
        return {"rows_per_s": round(n / calls, 1), "ms_per_window": round(1000 * calls / len(windows), 2),
                "release_s": round(time.perf_counter() - start - calls, 3)}
    finally:
        _unlink(path)


def bench_fetches(template: Path, scratch: Path, base: list[Any], fresh: list[Any], windows: list[int], total: int,
                  runs: int) -> list[dict[str, Any]]:
    from warehouse import FrontierRow

    rng = random.Random(9)
    results = []
    for size in windows:
        new_rows = iter(fresh)
        work = []
        at = datetime(2026, 1, 3, tzinfo=UTC)
        for k in range(max(1, total // size)):
            at += timedelta(seconds=1)
            n_articles, n_lists = int(size * 0.8), size // 10
            articles = rng.sample(base, n_articles // 2) + [next(new_rows) for _ in range(n_articles - n_articles // 2)]
            rows = page_fetches(articles, at, 20_000)
            found = []
            for j in range(n_lists):
                url = f"https://demo.example.com/list/{k}-{j}.html"
                rows += page_fetches([replace(articles[j], url=url)], at, 8_000)
                rows[-1] = replace(rows[-1], kind="list", html=None)
                found += [FrontierRow(f"https://demo.example.com/news/{k}-{j}-{m}.html" if m % 2 else articles[m % len(articles)].url,
                                      "demo", "article", url) for m in range(20)]
            for j in range(size - len(rows)):
                rows += [replace(page_fetches([articles[j]], at, 100)[0], status=None, error=("timeout", "http_5xx")[j % 2],
                                 html=None, nbytes=0, url=articles[j].url + f"?fail={k}")]
            work.append((rows, found))
        outs = _rounds(f"record_fetches window {size}", {"sieve": lambda work=work: run_fetches(template, scratch, work)}, runs)
        results.append(_summary(outs["sieve"], window=size, rows=sum(len(r) for r, _ in work),
                                discovered=sum(len(f) for _, f in work)))
    return results


# --- queries -------------------------------------------------------------------------------------
QUERIES: dict[str, str] = {
    "open + SELECT 1": "SELECT 1",
    "count per source per day (published, Asia/Shanghai)":
        "SELECT source_id, CAST(published_at AT TIME ZONE 'Asia/Shanghai' AS DATE) AS day, count(*) AS n "
        "FROM articles GROUP BY ALL ORDER BY ALL",
    "v_daily (per source per day: new, updated, duplicates)": "SELECT * FROM v_daily",
    f"LIKE '%{KEYWORD}%' count": f"SELECT count(*) FROM articles WHERE text LIKE '%{KEYWORD}%'",
    f"LIKE '%{KEYWORD}%' first 20 (url, title)":
        f"SELECT url, title FROM articles WHERE text LIKE '%{KEYWORD}%' LIMIT 20",
    "v_articles distinct count": "SELECT count(*) FROM v_articles",
}


def bench_queries(path: Path, runs: int) -> list[dict[str, Any]]:
    import duckdb

    from warehouse import Warehouse

    wh = Warehouse(path)
    results = []
    # Warehouse.query first, with no other connection to the file open in this process: its sandbox
    # locks the configuration of the DuckDB instance, which an open connection would share
    for label, sql in QUERIES.items():
        via_wh, rows = [], None
        for _ in range(runs + 1):   # the first is the cold run
            t0 = time.perf_counter()
            out = wh.query(sql)
            via_wh.append(1000 * (time.perf_counter() - t0))
            rows = len(out.rows)
        results.append({"query": label, "sql": sql, "rows": rows, "cold_ms": round(via_wh[0], 1),
                        "warehouse_query_ms": round(median(via_wh[1:]), 1)})
    con = duckdb.connect(str(path), read_only=True)
    try:
        for result in results:
            via_con = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                con.execute(result["sql"]).fetchall()
                via_con.append(1000 * (time.perf_counter() - t0))
            result["open_connection_ms"] = round(median(via_con[1:]), 1)
            print(f"  {result['query']}: {result['warehouse_query_ms']} ms via Warehouse.query, "
                  f"{result['open_connection_ms']} ms on an open connection", flush=True)
    finally:
        con.close()
    return results


def render(payload: dict[str, Any]) -> str:
    text = ""
    if payload.get("forms"):
        text += f"Upsert forms alone, {payload['table_rows']:,}-row table, half new half changed (load {payload['loads'].get('forms')}):\n\n"
        text += table(["form", "batch", "rows/s (median)", "min-max", "ms/batch", "idempotent"],
                      [[r["form"], f"{r['batch']:,}", f"{r['rows_per_s']:,.0f}", f"{r['min_max'][0]:,}-{r['min_max'][1]:,}",
                        r["ms_per_batch"], "yes" if r["idempotent"] else "NO"] for r in payload["forms"]]) + "\n\n"
    if payload.get("extractions"):
        text += f"Warehouse.record_extractions on {payload['table_rows']:,} stored articles, file held (load {payload['loads'].get('extractions')}):\n\n"
        text += table(["batch", "mix", "rows/s (median)", "min-max", "ms/batch", "rows/s incl. release",
                       f"target >= {TARGET_ROWS_PER_S:,}"],
                      [[f"{r['batch']:,}", r["mix"], f"{r['rows_per_s']:,.0f}", f"{r['min_max'][0]:,}-{r['min_max'][1]:,}",
                        r["ms_per_batch"], f"{r['rows_per_s_with_release']:,.0f}", verdict(r["rows_per_s"] >= TARGET_ROWS_PER_S)]
                       for r in payload["extractions"]]) + "\n\n"
    if payload.get("fetches"):
        text += f"Warehouse.record_fetches commit windows on {payload['table_rows']:,} stored pages (load {payload['loads'].get('fetches')}):\n\n"
        text += table(["window (rows)", "discovered URLs", "rows/s (median)", "min-max", "ms/window"],
                      [[r["window"], f"{r['discovered']:,}", f"{r['rows_per_s']:,.0f}", f"{r['min_max'][0]:,}-{r['min_max'][1]:,}",
                        r["ms_per_window"]] for r in payload["fetches"]]) + "\n\n"
    if payload.get("load"):
        text += table(["bulk load into a fresh file", "rows", "rows/s (median)", "min-max", "ms/call first third",
                       "ms/call last third"],
                      [[f"batches of {r['batch']:,}, " + ("file held (hold_s=2)" if r["hold_s"] else "opened per call"),
                        f"{r['rows']:,}", f"{r['rows_per_s']:,.0f}", f"{r['min_max'][0]:,.0f}-{r['min_max'][1]:,.0f}",
                        r["first_third_ms_per_call"], r["last_third_ms_per_call"]] for r in payload["load"]]) + "\n\n"
    if payload.get("queries"):
        text += f"Queries on {payload['query_rows']:,} articles ({payload['file_mb']:,} MB file):\n\n"
        text += table(["query", "result rows", "ms via Warehouse.query (median)", "ms on an open connection (median)",
                       "ms cold (first)"],
                      [[q["query"], q["rows"], q["warehouse_query_ms"], q["open_connection_ms"], q["cold_ms"]]
                       for q in payload["queries"]])
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="forms,extractions,fetches,load,queries")
    parser.add_argument("--table-rows", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=100_000, help="rows per bulk load")
    parser.add_argument("--query-rows", type=int, default=1_000_000)
    parser.add_argument("--batches", default="500,1000,5000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller: 50k-row tables, fewer rows per measurement")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    quick = args.quick
    table_rows = 50_000 if quick else args.table_rows
    per_measure = 5_000 if quick else 20_000
    batches = [int(b) for b in args.batches.split(",") if b]
    runs = max(1, args.runs)
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="warehouse-", dir=OUT / "tmp"))
    payload: dict[str, Any] = {"benchmark": "warehouse", "table_rows": table_rows, "loads": {},
                               "command": " ".join(["python -m bench.warehouse", *(sys.argv[1:] if argv is None else argv)])}
    try:
        rows = synthetic_articles(BASE_ROWS + 2 * per_measure + 1)
        base, fresh = rows[:BASE_ROWS], rows[BASE_ROWS:]
        if "forms" in parts:
            print("warehouse: upsert forms ...", flush=True)
            payload["forms"] = bench_forms(scratch, table_rows, batches, per_measure, runs)
            payload["loads"]["forms"] = _load_now()
        if parts & {"extractions", "fetches"}:
            template = scratch / "template.duckdb"
            print(f"warehouse: template of {build_template(template, base, table_rows):,} articles ...", flush=True)
            if "extractions" in parts:
                payload["extractions"] = bench_extractions(template, scratch, base, fresh, batches, per_measure, runs)
                payload["loads"]["extractions"] = _load_now()
            if "fetches" in parts:
                payload["fetches"] = bench_fetches(template, scratch, base, fresh, [100, 500], per_measure // 2, runs)
                payload["loads"]["fetches"] = _load_now()
            _unlink(template)
        if parts & {"load", "queries"}:
            n_rows, query_rows = (20_000, 200_000) if quick else (args.rows, args.query_rows)
            load_rows = rows[:n_rows] if n_rows <= len(rows) else synthetic_articles(n_rows)
            if "load" in parts:
                payload["load"] = bench_load(load_rows, batches if not quick else [100, 5000], runs, scratch,
                                             5_000 if quick else SMALL_BATCH_ROWS)
                payload["loads"]["load"] = _load_now()
            if "queries" in parts:
                path = scratch / "query.duckdb"
                load(path, load_rows, max(batches))
                total = grow(path, max(1, round(query_rows / n_rows)))
                print(f"warehouse: {total:,} articles, {path.stat().st_size / 2**20:,.0f} MB; queries ...", flush=True)
                payload.update(queries=bench_queries(path, runs), query_rows=total, file_mb=round(path.stat().st_size / 2**20))
        shapes = payload.get("extractions", []) + payload.get("load", [])
        payload["target_met"] = any(r["rows_per_s"] >= TARGET_ROWS_PER_S for r in shapes if r["batch"] >= 1000) if shapes else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_json("warehouse", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
