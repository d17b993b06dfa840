"""The dispatcher: the one owner of a source's frontier when a fleet of workers crawls it.

It runs beside the warehouse (it is the file's one writer) and repeats a round until nothing is due
and no claim is out:

    load the shards that landed (loader.py) ─► expire ended leases ─► claim due URLs host by host
        ▲                                                               │ launch(claim): a worker run
        └─────────────── workers write shards to shared storage ◄──────┘

A crawl through the fleet is a `crawl` run of the source like a local one (same run row, same
exclusivity: a plain `sieve crawl` of the source is refused while it runs or while its claims are
open), whose fetches come back as shards. Before a claim's lease is let go, the claim's own parts
are loaded once more, so a worker's last proof of life is never missed. At the end, pages stored
without an extraction (a worker killed between a window with the fetch and the next with the
article) are extracted here, as a local crawl does at its start.

`launch` is how a claim reaches a worker: a Prefect deployment run in production (flows/fleet.py),
an in-process task in tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler import normalize_url
from pipeline.fetch import kind_of
from pipeline.spec import SourceSpec, StopSignal, StreamOptions
from pipeline.summary import RunSummary
from warehouse import LIST_KINDS, Claim, FrontierRow, SourceRow, Warehouse
from warehouse.loader import CLEAN_AFTER, LEDGER_KEEP, LoadReport, load_shards
from warehouse.shards import ShardStore

log = logging.getLogger("sieve.pipeline")
Launch = Callable[[Claim], Awaitable[str]]  # start a worker on the claim; returns who took it (a flow run id)
_SUMMED = (
    "fetched",
    "unchanged",
    "failed",
    "discovered",
    "extracted",
    "articles_new",
    "articles_updated",
    "articles_unchanged",
    "duplicates",
    "rejected",
)


@dataclass(frozen=True)
class DispatchSettings:
    claim_urls: int = 200
    max_claims: int = 4
    lease_s: float = 300.0
    start_s: float = 600.0
    poll_s: float = 2.0
    clean_after_s: float = CLEAN_AFTER.total_seconds()


def add_counts(summary: RunSummary, counts: dict[str, int]) -> None:
    """Add a loaded shard's counts (loader.shard_counts and what its upserts did) to a run's summary."""
    for key in _SUMMED:
        setattr(summary, key, getattr(summary, key) + int(counts.get(key, 0)))
    for key, n in counts.items():
        if key.startswith("failed_"):
            summary.failures[key.removeprefix("failed_")] += int(n)
        elif key.startswith("rejected_"):
            summary.rejections[key.removeprefix("rejected_")] += int(n)


class Dispatcher:
    def __init__(
        self,
        source: SourceSpec,
        warehouse_path: str | Path,
        store: ShardStore,
        launch: Launch,
        *,
        settings: DispatchSettings = DispatchSettings(),
        options: StreamOptions | None = None,
        stop: StopSignal | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.warehouse = Warehouse(warehouse_path, hold_s=2.0)
        self.warehouse_path = warehouse_path
        self.store = store
        self.launch = launch
        self.settings = settings
        self.options = options
        self.stop = stop or StopSignal()
        self.params = {
            "fleet": True,
            "shards": store.root,
            "claim_urls": settings.claim_urls,
            "max_claims": settings.max_claims,
            "lease_s": settings.lease_s,
            "start_s": settings.start_s,
            **(params or {}),
        }
        self.summary = RunSummary(kind="crawl", source=source.name)
        self.claims_made = 0
        self.rounds = 0

    @property
    def run_id(self) -> str | None:
        return self.summary.run_id

    async def run(self) -> RunSummary:
        """Dispatch until the source has nothing due and nothing out (or a stop); the run row says how it went."""
        wh, source, started = self.warehouse, self.source, time.monotonic()
        await asyncio.to_thread(wh.upsert_sources, [SourceRow(source.name, source.config_hash, source.config_json)])
        self.summary.run_id = await asyncio.to_thread(wh.start_run, "crawl", source.name, self.params, exclusive=True)
        status, error = "completed", None
        try:
            await self._seed()
            await self._rounds()
            if not self.stop.requested:
                await self._extract_orphans()
        except BaseException as exc:
            interrupted = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
            status, error = ("cancelled", "interrupted") if interrupted else ("failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if self.stop.requested and status == "completed":
                status, error = "cancelled", "interrupted"
            self.summary.status, self.summary.error = status, error
            self.summary.duration_s = round(time.monotonic() - started, 2)
            try:
                await asyncio.to_thread(wh.finish_run, self.summary.run_id, status, self.summary.as_dict(), error)
            finally:
                await asyncio.to_thread(wh.release)
        return self.summary

    async def _seed(self) -> None:
        article_re = None
        if self.source.article_url_pattern:
            import re

            article_re = re.compile(self.source.article_url_pattern)
        rows = [
            FrontierRow(u, self.source.name, kind_of(u, article_re), None)
            for u in (normalize_url(url) for url in self.source.start_urls)
            if u
        ]
        await asyncio.to_thread(self.warehouse.add_frontier, rows)
        await asyncio.to_thread(self.warehouse.make_due, self.source.name, LIST_KINDS, datetime.now(UTC))

    async def _rounds(self) -> None:
        s, wh = self.settings, self.warehouse
        run_id = self.run_id
        assert run_id is not None  # the run row is started before the rounds
        while not self.stop.requested:
            self.rounds += 1
            await self._load()
            now = datetime.now(UTC)
            # A lease about to be let go: that claim's parts once more, listed now, so none written in time is missed.
            for ending in [c for c in await asyncio.to_thread(wh.claims, run_id=self.run_id) if c.lease_until <= now]:
                await self._load(claim_id=ending.claim_id)
            made = await asyncio.to_thread(
                wh.claim,
                run_id,
                self.source.name,
                max_claims=s.max_claims,
                claim_urls=s.claim_urls,
                lease=timedelta(seconds=s.lease_s),
                start=timedelta(seconds=s.start_s),
                now=now,
            )
            for claim in made:
                self.claims_made += 1
                worker = await self.launch(claim)
                await asyncio.to_thread(wh.set_claim_worker, claim.claim_id, worker)
                log.info(
                    "claim %s: %d URLs of %s -> %s", claim.claim_id, len(claim.items), ", ".join(claim.hosts), worker
                )
            if not made and not await asyncio.to_thread(wh.claims, run_id=self.run_id):
                await self._load()  # whatever landed since the last pass
                return
            await self._pause(s.poll_s)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _load(self, claim_id: str | None = None) -> LoadReport:
        clean = timedelta(seconds=self.settings.clean_after_s)
        report = await asyncio.to_thread(load_shards, self.warehouse, self.store, claim_id=claim_id, clean_after=clean)
        if (counts := report.by_run.get(self.run_id or "")) is not None:
            add_counts(self.summary, counts)
            self.summary.windows += sum(1 for sid in report.loaded if not sid.endswith(("/00000", "/end")))
        for shard_id, why in report.rejected.items():
            log.warning("shard %s refused: %s", shard_id, why)
        return report

    async def _extract_orphans(self) -> None:
        """Pages a killed worker stored without their extraction: extract them here (a re-extraction run)."""
        from pipeline.run import Pipeline

        orphans = await asyncio.to_thread(
            self.warehouse.query,
            "SELECT count(*) FROM pages p ANTI JOIN extractions e USING (url) "
            "WHERE p.source_id = ? AND p.kind = 'article'",
            [self.source.name],
        )
        if not orphans.rows[0][0]:
            return
        log.info(
            "%d pages stored without an extraction (a worker stopped between windows): extracting them here",
            orphans.rows[0][0],
        )
        async with Pipeline(
            self.source, self.warehouse_path, kind="reextract", params={"after": self.run_id}, options=self.options
        ) as pipeline:
            await pipeline.extract_pending(only_stale=True)
        self.summary.reextracted += pipeline.summary.reextracted
        self.summary.articles_new += pipeline.summary.articles_new
        self.summary.articles_updated += pipeline.summary.articles_updated
        self.summary.duplicates += pipeline.summary.duplicates


def load_pass(
    warehouse_path: str | Path, store: ShardStore, *, clean_after: timedelta | None = CLEAN_AFTER
) -> dict[str, Any]:
    """The loader on its own (`sieve fleet load`, the `load-shards` flow): apply what landed, clean up stale
    incomplete parts, let go of ended leases. Returns what it did, flat."""
    warehouse = Warehouse(warehouse_path, hold_s=2.0)
    try:
        report = load_shards(warehouse, store, clean_after=clean_after)
        expired = warehouse.expire_claims()
        pruned = warehouse.prune_shard_loads(LEDGER_KEEP)
    finally:
        warehouse.release()
    return {
        "loaded": len(report.loaded),
        "already": len(report.already),
        "waiting": len(report.waiting),
        "rejected": len(report.rejected),
        "cleaned": len(report.cleaned),
        "claims_closed": len(report.closed),
        "claims_expired": len(expired),
        "ledger_pruned": pruned,
        "rows": report.rows,
        **dict(sorted(report.counts.items())),
        "rejected_shards": report.rejected,
    }
