"""A fleet worker's run: the same stream as a local crawl (frontier, fetch, extraction, one writer), over
the URLs of one claim, whose writer writes each committed window as a shard (warehouse/shards.py) on
shared storage instead of into the DuckDB file. The worker never opens a warehouse.

    claim (URLs of its hosts, a lease) ─► fetch ─► extraction ─► ShardWriter ─► <shards>/incoming/<source>/<claim>/

- Parts: `00000` at the start (a proof of life), one per committed window, `end` last with how many
  windows came before it and the run's summary. The loader applies them; the end part closes the claim.
- Hosts: only the claim's. Pagination found on a list page is followed (as a local crawl does) only on
  the claim's hosts, and the articles found there are fetched in the same claim (HostFrontier), so one
  claim usually does a whole host; links to other hosts reach the warehouse in the shard and wait for
  their own claim. Whatever the worker fetched is in its shards; what it found and did not get to is in
  them as discovered, due to the next claim (a killed worker's unlanded list pages are still due).
- Lease: `LeaseClock` keeps the same deadline the warehouse keeps (claims.py): the claim's lease end,
  extended by every part written in time. No request starts after it (less a margin for clock skew and
  for the dispatcher's view of the last part): the run stops as on Ctrl-C, commits its open window and
  ends. The dispatcher then gives the URLs it did not reach to another claim.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from crawler.fetcher import host_key
from outcomes import TransientError
from pipeline.frontier import Frontier
from pipeline.intake import start_extraction
from pipeline.run import Pipeline, ProgressFn
from pipeline.spec import SourceSpec, StopSignal, StreamOptions
from pipeline.write import Committer, Window, Writer
from warehouse import Claim, ExtractionCounts, FrontierItem
from warehouse.shards import END_PART, START_PART, Shard, ShardStore, window_part

log = logging.getLogger("sieve.pipeline")
# The worker never writes a warehouse: the Warehouse object the pipeline holds is a placeholder for
# this path and is never opened (claims are never read from the frontier here).
NO_WAREHOUSE = os.devnull
SHARDS_UNAVAILABLE = "shards_unavailable"


class LeaseClock:
    """The claim's lease as the worker sees it, by the rule the warehouse applies (claims.renew): until the
    first part, the time the claim gave its worker to start; then `lease_s` after the latest part written
    before the deadline. Parts written in the margin before the end do not count here (the dispatcher may
    already be letting the claim go), so the worker's deadline is never later than the dispatcher's."""

    def __init__(self, until: datetime, lease_s: float) -> None:
        self.until = until
        self.lease_s = lease_s
        self.margin_s = min(10.0, lease_s / 5)
        self.started = False

    @property
    def deadline(self) -> datetime:
        return self.until - timedelta(seconds=self.margin_s)

    def proof(self, written_at: datetime) -> None:
        if written_at < self.deadline:
            extended = written_at + timedelta(seconds=self.lease_s)
            self.until = max(self.until, extended) if self.started else extended
            self.started = True

    def left_s(self, now: datetime | None = None) -> float:
        return (self.deadline - (now or datetime.now(UTC))).total_seconds()


class ShardWriter(Writer):
    """The writer of a local crawl, storing each window as a shard part instead of a warehouse transaction."""

    def __init__(
        self, store: ShardStore, claim: Claim, source: SourceSpec, clock: LeaseClock, worker: str, **kwargs: Any
    ) -> None:
        super().__init__(None, checkpoint_rows=sys.maxsize, **kwargs)  # type: ignore[arg-type]  # never a file
        self.store = store
        self.claim = claim
        self.source = source
        self.clock = clock
        self.worker = worker

    def part(self, part: str, window: Window | None = None, **fields: Any) -> Shard:
        shard = Shard(
            source_id=self.claim.source_id,
            claim_id=self.claim.claim_id,
            part=part,
            written_at=datetime.now(UTC),
            run_id=self.claim.run_id,
            revisit_after_s=self.revisit_after.total_seconds(),
            worker=self.worker,
            **fields,
        )
        if window is not None:
            shard.fetches, shard.discovered = list(window.fetches), list(window.discovered)
            shard.articles, shard.rejections = list(window.articles), list(window.rejections)
        return shard

    def write(self, shard: Shard) -> None:
        """Write a part; it proves this worker alive as of just before its manifest became visible."""
        shard.written_at = datetime.now(UTC)
        self.store.write(shard)
        self.clock.proof(shard.written_at)

    def _store(self, window: Window) -> tuple[int, ExtractionCounts]:
        # What is new to the frontier, or new as an article, only the loader can tell: it counts those.
        try:
            self.write(self.part(window_part(window.number), window))
        except OSError as exc:  # storage unreachable: the writer keeps the window and tries again (until the lease)
            raise TransientError(SHARDS_UNAVAILABLE, f"{self.store.root}: {exc}") from exc
        return 0, ExtractionCounts()


class HostFrontier(Frontier):
    """The claim's URLs, pagination found on its own hosts only (another host is another claim's), and the
    articles found on its `found_hosts`, fetched in this claim while its fetches stay under `claim_urls`.
    Never a URL the warehouse knows and did not give (the claim's `skip`): fresh, given up on, or another
    round's. The hosts are the claim's alone until it closes, so no other worker can fetch what it finds."""

    def __init__(
        self,
        *args: Any,
        hosts: Sequence[str],
        skip: Sequence[str] = (),
        found_hosts: Sequence[str] = (),
        claim_urls: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.hosts = frozenset(hosts)
        self.skip = frozenset(skip)
        self.found_hosts = frozenset(found_hosts) & self.hosts
        self._found: deque[FrontierItem] = deque()
        self._seen = set(self._queued)  # URLs given or taken as found: each fetched once in this claim
        self.found_left = max(0, claim_urls - self._given_count)

    def offer_lists(self, parent: str, urls: Sequence[str]) -> None:
        super().offer_lists(parent, [u for u in urls if host_key(u) in self.hosts and u not in self.skip])

    def offer_articles(self, parent: str, urls: Sequence[str]) -> None:
        if self.done or (self._stop is not None and self._stop.requested):
            return
        for url in urls:
            if self.found_left <= 0:
                return
            if url in self._seen or url in self.skip or host_key(url) not in self.found_hosts:
                continue
            self._seen.add(url)
            self.found_left -= 1
            self._found.append(FrontierItem(url, self.source.name, "article", None, None, 0))
            self._queued.add(url)
            self._news.set()

    def _pop(self) -> FrontierItem | None:
        item = super()._pop()
        if item is None and self._found:  # the claim's own URLs and pagination first, then what they revealed
            item = self._found.popleft()
            self._queued.discard(item.url)
            self._uncommitted[item.url] = None
            self._claimed += 1
        return item


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ClaimRun(Pipeline):
    """`async with ClaimRun(spec, claim, store) as run: await run.crawl_claim()`; `run.summary` is what it did."""

    def __init__(
        self,
        source: SourceSpec,
        claim: Claim,
        store: ShardStore,
        *,
        options: StreamOptions | None = None,
        progress: ProgressFn | None = None,
        commit: Committer | None = None,
        stop: StopSignal | None = None,
        worker: str | None = None,
    ) -> None:
        super().__init__(
            source,
            NO_WAREHOUSE,
            kind="crawl",
            params={"claim": claim.claim_id},
            options=options,
            progress=progress,
            commit=commit,
            stop=stop,
        )
        self.claim = claim
        self.store = store
        self.clock = LeaseClock(claim.lease_until, claim.lease_s)
        self.worker = worker or worker_name()
        self.summary.run_id = claim.run_id
        self.expired_before_start = False
        self._lease_stop = False

    async def __aenter__(self) -> ClaimRun:
        self.extraction = start_extraction(self.source.rules, self._on_result, self.options)
        self.writer = ShardWriter(
            self.store,
            self.claim,
            self.source,
            self.clock,
            self.worker,
            summary=self.summary,
            revisit_after=timedelta(hours=self.source.crawl.revisit_after_hours),
            commit_rows=self.options.commit_rows,
            commit_seconds=self.options.commit_seconds,
            commit=self._commit,
            stop=self.stop,
            on_commit=self._committed,
            on_wait=self._on_wait,
        )
        try:
            await asyncio.to_thread(self.writer.write, self.writer.part(START_PART))
        except BaseException:
            assert self.extraction is not None
            await self.extraction.close(cancel=True)
            raise
        return self

    async def __aexit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if self.extraction is not None:
            await self.extraction.close(cancel=True)
        s = self.summary
        if exc_type is not None:
            s.status, s.error = "failed", f"{exc_type.__name__}: {exc}"
        elif self.stop.requested and not self._lease_stop:
            s.status, s.error = "cancelled", "interrupted"
        else:
            s.status = "completed"
        s.duration_s = round(time.monotonic() - self._started, 2)
        assert isinstance(self.writer, ShardWriter)
        summary = s.as_dict()
        summary.update(lease_ended=self._lease_stop, expired_before_start=self.expired_before_start)
        end = self.writer.part(END_PART, final=True, windows=self.writer.generation, summary=summary)
        await asyncio.to_thread(self.writer.write, end)

    async def crawl_claim(self) -> None:
        """Fetch the claim's URLs (and pagination on its hosts), extract, write shards; stop at the lease's end."""
        if self.clock.left_s() <= 0:
            self.expired_before_start = True  # picked up too late: the dispatcher gives the URLs to another claim
            log.warning("claim %s: its lease ended before this worker started; fetching nothing", self.claim.claim_id)
            return
        frontier = HostFrontier(
            None,
            self.source,
            self.writer,
            batch_size=self.options.batch_size,
            given=self.claim.items,
            claim_due=False,
            follow_lists=True,
            busy=self._in_flight,
            stop=self.stop,
            on_wait=self._on_wait,
            hosts=self.claim.hosts,
            skip=self.claim.skip,
            found_hosts=self.claim.found_hosts,
            claim_urls=self.claim.claim_urls,
        )
        watch = asyncio.ensure_future(self._watch_lease())
        try:
            await self._stream(frontier, scan_stored=False)
        finally:
            watch.cancel()

    async def _watch_lease(self) -> None:
        while (left := self.clock.left_s()) > 0:
            await asyncio.sleep(min(left, 1.0))
        log.warning(
            "claim %s: lease ends; stopping (what is fetched is written, the rest goes to another claim)",
            self.claim.claim_id,
        )
        self._lease_stop = True
        self.stop.set()
