"""The loader: complete shards (shards.py) applied to the DuckDB file, one transaction per shard.

A shard is applied with the single writer's own upserts (fetch_log, frontier, articles: the ones a
local crawl's windows go through), then recorded in `shard_loads` in the same transaction, so a shard
is applied whole or not at all, and loading it again changes nothing (the ledger says it is loaded;
even without the ledger, every upsert is idempotent). Each shard also proves its worker alive
(claims.renew), and a claim's `end` part closes it once every window before it is loaded.

Refused (moved to `rejected/` with the reason, never a crash of the loader): a part that cannot be
read or is not what its manifest says, rows of another source than the shard's, a claim this
warehouse never made (two warehouses writing to one root must not mix). A part without a manifest is
left alone while its worker may still be writing it, and deleted once older than `clean_after`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from . import articles as article_store, claims, fetch_log, frontier, runs
from .shards import END_PART, START_PART, Shard, ShardError, ShardStore

log = logging.getLogger("sieve.warehouse")
CLEAN_AFTER = timedelta(hours=1)
# Ledger rows of claims closed this long ago go (a window a second per worker adds up); a part of such a
# claim loaded again is still a no-op, by the upserts alone.
LEDGER_KEEP = timedelta(days=7)


def shard_counts(shard: Shard) -> Counter:
    """What the shard's rows say by themselves: fetched, unchanged, failed (and by kind), extracted."""
    counts: Counter = Counter()
    for row in shard.fetches:
        if row.error:
            counts["failed"] += 1
            counts[f"failed_{row.error}"] += 1
        elif row.status == 304:
            counts["unchanged"] += 1
        else:
            counts["fetched"] += 1
    counts["extracted"] = len(shard.articles) + len(shard.rejections)
    for rejection in shard.rejections:
        counts[f"rejected_{rejection.reason}"] += 1
    return counts


def _check(con: duckdb.DuckDBPyConnection, shard: Shard) -> None:
    if not con.execute(
        "SELECT 1 FROM claims WHERE claim_id = ? AND source_id = ?", [shard.claim_id, shard.source_id]
    ).fetchall():
        raise ShardError(f"claim {shard.claim_id} of {shard.source_id} was not made by this warehouse")
    sources = (
        {r.source_id for r in shard.fetches}
        | {r.source_id for r in shard.discovered}
        | {r.source_id for r in shard.articles}
        | {r.source_id for r in shard.rejections}
    )
    if sources - {shard.source_id}:
        raise ShardError(
            f"rows of other sources ({', '.join(sorted(sources - {shard.source_id}))}) in a shard of {shard.source_id}"
        )


def apply_shard(
    con: duckdb.DuckDBPyConnection,
    shard: Shard,
    now: datetime,
    *,
    retry_base_s: float,
    backoff_cap_s: float,
    retry_after_cap_s: float,
) -> tuple[str, dict[str, Any]]:
    """Apply one shard (call inside a transaction). Returns ("loaded", counts), ("already", {}) or
    ("waiting", {}) for an end part whose windows are not all loaded yet."""
    if con.execute("SELECT 1 FROM shard_loads WHERE shard_id = ?", [shard.shard_id]).fetchall():
        return "already", {}
    _check(con, shard)
    state = con.execute("SELECT status FROM claims WHERE claim_id = ?", [shard.claim_id]).fetchall()[0][0]
    if shard.final and state == "open":
        loaded = con.execute(
            "SELECT count(*) FROM shard_loads WHERE claim_id = ? AND shard_id NOT LIKE ? AND shard_id NOT LIKE ?",
            [shard.claim_id, f"%/{START_PART}", f"%/{END_PART}"],
        ).fetchall()[0][0]
        if loaded < shard.windows:
            return "waiting", {}
    counts = shard_counts(shard)
    if shard.fetches or shard.discovered:
        known = con.execute("SELECT count(*) FROM frontier WHERE source_id = ?", [shard.source_id]).fetchall()[0][0]
        schedule = frontier.Schedule(
            revisit_s=shard.revisit_after_s,
            retry_base_s=retry_base_s,
            backoff_cap_s=backoff_cap_s,
            retry_after_cap_s=retry_after_cap_s,
        )
        fetch_log.append_fetches(con, shard.fetches)
        fetch_log.upsert_pages(con, shard.fetches)
        frontier.update_after_fetches(con, shard.fetches, schedule, shard.discovered, now)
        counts["discovered"] = (
            con.execute("SELECT count(*) FROM frontier WHERE source_id = ?", [shard.source_id]).fetchall()[0][0] - known
        )
    if shard.articles or shard.rejections:
        made = article_store.record_extractions(con, shard.articles, shard.rejections)
        counts.update(
            {
                "articles_new": made.new,
                "articles_updated": made.updated,
                "articles_unchanged": made.unchanged,
                "duplicates": made.duplicates,
                "rejected": made.rejected,
            }
        )
    if state == "open":
        if shard.final:
            claims.close(con, shard.claim_id, now, "done")
        else:
            claims.renew(con, shard.claim_id, shard.written_at)
    if shard.run_id:
        runs.heartbeat(con, [shard.run_id], now)
    result = dict(counts)
    con.execute(
        "INSERT INTO shard_loads (shard_id, claim_id, run_id, source_id, written_at, loaded_at, counts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [shard.shard_id, shard.claim_id, shard.run_id, shard.source_id, shard.written_at, now, json.dumps(result)],
    )
    return "loaded", result


def prune_ledger(con: duckdb.DuckDBPyConnection, before: datetime) -> int:
    """Forget the loaded parts of claims closed before `before`. Returns how many ledger rows went."""
    return int(
        con.execute(
            "DELETE FROM shard_loads WHERE claim_id IN (SELECT claim_id FROM claims WHERE status <> 'open' "
            "AND closed_at < ?)",
            [before],
        ).fetchall()[0][0]
    )


@dataclass
class LoadReport:
    """What one pass of the loader did."""

    loaded: list[str] = field(default_factory=list)  # shard ids applied now
    already: list[str] = field(default_factory=list)  # found applied before (moved to loaded/ now)
    waiting: list[str] = field(default_factory=list)  # end parts whose windows are not all loaded yet
    rejected: dict[str, str] = field(default_factory=dict)  # shard id (or folder) -> why
    cleaned: list[str] = field(default_factory=list)  # incomplete parts deleted
    closed: list[str] = field(default_factory=list)  # claims closed as done
    counts: Counter = field(default_factory=Counter)  # the applied shards' counts, summed
    by_run: dict[str, Counter] = field(default_factory=dict)
    rows: int = 0  # rows applied (fetches, links, articles, rejections)

    def add(self, other: LoadReport) -> None:
        self.loaded += other.loaded
        self.already += other.already
        self.waiting = other.waiting
        self.rejected.update(other.rejected)
        self.cleaned += other.cleaned
        self.closed += other.closed
        self.counts.update(other.counts)
        for run_id, counts in other.by_run.items():
            self.by_run.setdefault(run_id, Counter()).update(counts)
        self.rows += other.rows


def load_shards(
    warehouse: Any,
    store: ShardStore,
    *,
    claim_id: str | None = None,
    clean_after: timedelta | None = CLEAN_AFTER,
    now: datetime | None = None,
) -> LoadReport:
    """One pass: apply every complete shard under incoming/ (of one claim, or all), in claim and part
    order, each in its own transaction; move each to loaded/; delete incomplete parts older than
    `clean_after` (None: keep them). `warehouse` is a `Warehouse`."""
    report = LoadReport()
    for ref in store.complete(claim_id=claim_id):
        try:
            shard = store.read(ref)
            outcome, counts = warehouse.load_shard(shard)
        except ShardError as exc:
            log.warning("shard %s refused: %s", ref.shard_id, exc)
            store.reject(ref, str(exc))
            report.rejected[ref.shard_id] = str(exc)
            continue
        if outcome == "waiting":
            report.waiting.append(ref.shard_id)
            continue
        store.archive(ref)
        if outcome == "already":
            report.already.append(ref.shard_id)
            continue
        report.loaded.append(ref.shard_id)
        report.rows += shard.rows
        report.counts.update(counts)
        if shard.run_id:
            report.by_run.setdefault(shard.run_id, Counter()).update(counts)
        if shard.final:
            report.closed.append(shard.claim_id)
    if clean_after is not None and claim_id is None:
        report.cleaned = store.clean_incomplete(older_than=clean_after, now=now or datetime.now(UTC))
    return report
