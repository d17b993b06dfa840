"""Warehouse: bulk load through `Warehouse.record_extractions`, and typical queries on 1,000,000 articles.

Load: 100,000 synthetic articles (about 1,000 Chinese characters each, 5 sources, a year of dates,
5% exact copies and 3% near copies so duplicate folding does real work) in batches of 100 (what the
crawl pipeline sends per batch), 1,000 and 5,000, each size into a fresh file, median of the runs; once
opening the file per call (Warehouse default, hold_s=0) and once holding it between calls (hold_s=2, as
the crawl pipeline does).
Queries: the file is grown to 1,000,000 articles with plain DuckDB SQL (a bench shortcut: ten variants
of every loaded row), then each query runs through `Warehouse.query` (the `sieve sql` path, which opens
the file read-only per call) and on one open connection; median of the runs, first (cold) run apart.

    python -m bench.warehouse [--rows 100000] [--query-rows 1000000] [--runs 5] [--quick]
"""
from __future__ import annotations

import argparse
import sys
import hashlib
import random
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import OUT, median, spread, table, verdict, write_json

TARGET_ROWS_PER_S = 20_000
SMALL_BATCH_ROWS = 20_000
SOURCES = ("juredian", "demo", "toutiao_mirror", "wechat_digest", "news_hub")
KEYWORD = "量子纠缠咖啡"   # planted in 1% of texts: the LIKE search's needle
_CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def _paragraph_pool(rng: random.Random, n: int = 4000) -> list[str]:
    pool = []
    for _ in range(n):
        words = "".join(rng.choices(_CJK, k=rng.randint(60, 180)))
        cut = sorted(rng.sample(range(1, len(words)), 3))
        pool.append(words[: cut[0]] + "," + words[cut[0]: cut[1]] + "、" + words[cut[1]: cut[2]] + "," + words[cut[2]:] + "。")
    return pool


def synthetic_articles(n: int, seed: int = 11) -> list[Any]:
    """n ArticleRows; deterministic for a seed."""
    from warehouse import ArticleRow

    rng = random.Random(seed)
    pool = _paragraph_pool(rng)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
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


def _warehouse(path: Path, hold_s: float) -> Any:
    from warehouse import Warehouse

    try:
        return Warehouse(path, hold_s=hold_s)
    except TypeError:   # a warehouse without the writer lease
        return Warehouse(path)


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
    if hasattr(wh, "release"):
        wh.release()   # a held file is checkpointed on release: part of the load's cost
    wall = time.perf_counter() - start
    third = max(1, len(calls) // 3)
    return {"wall_s": round(wall, 3), "rows_per_s": round(len(rows) / wall, 1), **totals,
            "first_third_ms_per_call": round(1000 * median(calls[:third]), 2),
            "last_third_ms_per_call": round(1000 * median(calls[-third:]), 2)}


def bench_load(rows: list[Any], batches: list[int], runs: int, scratch: Path,
               small_batch_rows: int = SMALL_BATCH_ROWS, holds: tuple[float, ...] = (0.0, 2.0)) -> list[dict[str, Any]]:
    results = []
    for batch, hold_s in [(b, h) for b in batches for h in holds]:
        outs = []
        # small batches are slow per row: they load the first SMALL_BATCH_ROWS rows only (stated in the table)
        batch_rows = rows if batch >= 1000 else rows[:small_batch_rows]
        for run in range(runs):
            path = scratch / f"load-{batch}-{hold_s}-{run}.duckdb"
            outs.append(load(path, batch_rows, batch, hold_s))
            path.unlink(missing_ok=True)
            Path(str(path) + ".wal").unlink(missing_ok=True)
        rates = [o["rows_per_s"] for o in outs]
        results.append({"batch": batch, "hold_s": hold_s, "rows": len(batch_rows), "runs": runs, "rows_per_s": round(median(rates), 1),
                        "min_max": [round(v, 1) for v in spread(rates)], "wall_s": round(median([o["wall_s"] for o in outs]), 3),
                        "duplicates_folded": outs[0]["duplicates"], "first_third_ms_per_call": outs[0]["first_third_ms_per_call"],
                        "last_third_ms_per_call": outs[0]["last_third_ms_per_call"]})
        print(f"  load batch {batch}, hold_s {hold_s}: {results[-1]['rows_per_s']:,.0f} rows/s (ms per call: first third "
              f"{outs[0]['first_third_ms_per_call']}, last third {outs[0]['last_third_ms_per_call']})", flush=True)
    return results


def grow(path: Path, factor: int) -> int:
    """Make `factor` variants of every article with plain DuckDB (bench-only shortcut to 1M rows)."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN")
        con.execute(
            f"""
            INSERT INTO articles (article_id, source_id, url, page_url, title, author, account, published_at, text,
                                  content_hash, simhash, dup_of, flags, extractor_version, rules_version, extracted_at,
                                  first_seen, updated_at, seen_seq)
            SELECT a.article_id || '-' || k, a.source_id, a.url || '?v=' || k, a.page_url, a.title, a.author, a.account,
                   a.published_at - to_days(CAST(k * 37 AS INTEGER)), '第' || k || '版 ' || a.text,
                   md5(a.content_hash || k), xor(a.simhash, (k::UBIGINT << 17)), NULL, a.flags, a.extractor_version,
                   a.rules_version, a.extracted_at - to_days(CAST(k * 37 AS INTEGER)),
                   a.first_seen - to_days(CAST(k * 37 AS INTEGER)), a.updated_at - to_days(CAST(k * 37 AS INTEGER)),
                   a.seen_seq + k * 10000000
            FROM articles a CROSS JOIN range(1, {factor}) r(k)
            """
        )
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return int(con.execute("SELECT count(*) FROM articles").fetchall()[0][0])
    finally:
        con.close()


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
    con = duckdb.connect(str(path), read_only=True)
    results = []
    try:
        for label, sql in QUERIES.items():
            via_wh, via_con = [], []
            rows = None
            for _ in range(runs + 1):   # the first is the cold run
                t0 = time.perf_counter()
                out = wh.query(sql)
                via_wh.append(1000 * (time.perf_counter() - t0))
                t0 = time.perf_counter()
                con.execute(sql).fetchall()
                via_con.append(1000 * (time.perf_counter() - t0))
                rows = len(out.rows)
            results.append({"query": label, "sql": sql, "rows": rows, "cold_ms": round(via_wh[0], 1),
                            "warehouse_query_ms": round(median(via_wh[1:]), 1),
                            "open_connection_ms": round(median(via_con[1:]), 1)})
            print(f"  {label}: {results[-1]['warehouse_query_ms']} ms via Warehouse.query, "
                  f"{results[-1]['open_connection_ms']} ms on an open connection", flush=True)
    finally:
        con.close()
    return results


def render(payload: dict[str, Any]) -> str:
    rows = [[f"record_extractions, batches of {r['batch']:,}"
             + (f", hold_s={r['hold_s']:g} (file kept open between calls)" if r.get("hold_s") else ", hold_s=0 (open per call)"),
             f"{r['rows']:,}", f"{r['rows_per_s']:,.0f}",
             f"{r['min_max'][0]:,.0f}-{r['min_max'][1]:,.0f}", r["first_third_ms_per_call"], r["last_third_ms_per_call"],
             verdict(r["rows_per_s"] >= TARGET_ROWS_PER_S)] for r in payload["load"]]
    text = table(["bulk load", "rows", "rows/s (median)", "min-max", "ms/call first third", "ms/call last third",
                  f"target >= {TARGET_ROWS_PER_S:,} rows/s"], rows)
    qrows = [[q["query"], q["rows"], q["warehouse_query_ms"], q["open_connection_ms"], q["cold_ms"]] for q in payload["queries"]]
    text += f"\n\nQueries on {payload['query_rows']:,} articles ({payload['file_mb']:,} MB file):\n\n"
    text += table(["query", "result rows", "ms via Warehouse.query (median)", "ms on an open connection (median)",
                   "ms cold (first)"], qrows)
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--query-rows", type=int, default=1_000_000)
    parser.add_argument("--batches", default="100,1000,5000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 rows (5,000 in batches of 100), 200,000 for queries")
    args = parser.parse_args(argv)
    n_rows, query_rows = (20_000, 200_000) if args.quick else (args.rows, args.query_rows)
    batches = [int(b) for b in args.batches.split(",") if b]
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="warehouse-", dir=OUT / "tmp"))
    try:
        print(f"warehouse: generating {n_rows:,} synthetic articles ...", flush=True)
        rows = synthetic_articles(n_rows)
        load_results = bench_load(rows, batches, max(1, args.runs), scratch, 5_000 if args.quick else SMALL_BATCH_ROWS)
        path = scratch / "query.duckdb"
        load(path, rows, max(batches))
        factor = max(1, round(query_rows / n_rows))
        total = grow(path, factor) if factor > 1 else n_rows
        del rows
        print(f"warehouse: {total:,} articles, {path.stat().st_size / 2**20:,.0f} MB; queries ...", flush=True)
        query_results = bench_queries(path, max(1, args.runs))
        payload = {"benchmark": "warehouse", "command": " ".join(["python -m bench.warehouse", *(sys.argv[1:] if argv is None else argv)]),
                   "load": load_results, "query_rows": total, "file_mb": round(path.stat().st_size / 2**20),
                   "queries": query_results, "avg_text_chars": None,
                   "target_met": any(r["rows_per_s"] >= TARGET_ROWS_PER_S for r in load_results if r["batch"] >= 1000)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_json("warehouse", payload)
    print(render(payload))
    return payload


if __name__ == "__main__":
    main()
