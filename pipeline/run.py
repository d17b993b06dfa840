"""`Pipeline`: one run (crawl, backfill or re-extraction) of one source, its stages wired together.

    frontier ──► fetch workers ──► extraction workers ──► writer ──► DuckDB
        ▲            │ list pages (lane)                    │ new URLs, committed fetches
        └────────────┴──────────────────────────────────────┘

Every stage runs at once; bounded queues between them (frontier buffer, pages waiting for a worker,
rows waiting for a commit) make the slowest stage set the pace and keep memory flat. A run's state
lives in the warehouse: what a window committed is never fetched again, and a run killed at any
moment loses at most its open window (pages committed but not extracted are extracted by the next
run first). Use it as `async with Pipeline(...) as p: await p.crawl()`; `p.summary` is what it did.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from crawler import Fetcher, normalize_url
from outcomes import TransientError
from pipeline.extract import ProcessExtraction
from pipeline.extract_executor import ExecutorExtraction
from pipeline.fetch import FetchStage, kind_of
from pipeline.frontier import Frontier
from pipeline.intake import Page, start_extraction
from pipeline.rows import outcome_row
from pipeline.spec import PublishedWindow, SourceSpec, StopSignal, StreamOptions
from pipeline.summary import Progress, RunSummary
from pipeline.write import WAREHOUSE_BUSY, Committer, Window, Writer, patiently
from warehouse import LIST_KINDS, FrontierItem, FrontierRow, SourceRow, Warehouse, WarehouseBusy

log = logging.getLogger("sieve.pipeline")
T = TypeVar("T")
ProgressFn = Callable[[Progress], None]


class Pipeline:
    def __init__(
        self,
        source: SourceSpec,
        warehouse_path: str | Path,
        *,
        kind: str = "crawl",
        params: dict[str, Any] | None = None,
        options: StreamOptions | None = None,
        progress: ProgressFn | None = None,
        window: PublishedWindow = PublishedWindow(),
        commit: Committer | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        self.source = source
        self.kind = kind
        self.params = params or {}
        self.options = options or StreamOptions()
        self.published = window
        self.stop = stop or StopSignal()
        self._progress = progress
        self._commit = commit
        # The writer keeps the file between windows (closing it checkpoints) and lets go when idle for
        # 2 s or when `sieve sql` asks; each attempt on a locked file waits lock_wait_s, then patiently()
        # logs who holds it and tries again.
        wait = self.options.lock_wait_s
        self.warehouse = Warehouse(warehouse_path, hold_s=2.0, lock_timeout_s=wait, write_lock_timeout_s=wait)
        self.summary = RunSummary(kind=kind, source=source.name)
        self.started_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._article_re = re.compile(source.article_url_pattern) if source.article_url_pattern else None
        self._phase = "starting"
        self._waiting_for: str | None = None
        self.extraction: ProcessExtraction | ExecutorExtraction | None = None
        self.writer: Writer | None = None
        self.fetch: FetchStage | None = None
        self.frontier: Frontier | None = None

    @property
    def run_id(self) -> str | None:
        return self.summary.run_id

    # ---- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> Pipeline:
        # first: its workers start while the warehouse is opened
        self.extraction = start_extraction(self.source.rules, self._on_result, self.options)
        source = self.source
        try:
            await self._patient(self.warehouse.migrate, what="opening the warehouse")
            await self._patient(
                self.warehouse.upsert_sources, [SourceRow(source.name, source.config_hash, source.config_json)]
            )
            # exclusive: a crawl or backfill of a source another live run (or a fleet) holds is refused (SourceBusy)
            self.summary.run_id = await self._patient(
                self.warehouse.start_run, self.kind, source.name, self.params, exclusive=True
            )
        except BaseException:  # no run row yet: nothing to close but the workers and the file
            assert self.extraction is not None
            await self.extraction.close(cancel=True)
            self.warehouse.release()
            raise
        self.writer = Writer(
            self.warehouse,
            self.summary,
            revisit_after=timedelta(hours=source.crawl.revisit_after_hours),
            commit_rows=self.options.commit_rows,
            commit_seconds=self.options.commit_seconds,
            checkpoint_rows=self.options.checkpoint_rows,
            commit=self._commit,
            stop=self.stop,
            on_commit=self._committed,
            on_wait=self._on_wait,
        )
        return self

    async def __aexit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        interrupted = self.stop.requested or (
            exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, asyncio.CancelledError))
        )
        if self.extraction is not None:
            await self.extraction.close(cancel=True)
        if self.stop.failure is not None:
            status, error = "failed", self.stop.failure
        elif exc_type is None and not interrupted:
            status, error = "completed", None
        elif interrupted:
            status, error = "cancelled", "interrupted"
        else:
            status, error = "failed", f"{exc_type.__name__}: {exc}" if exc_type else None
        s = self.summary
        s.status, s.error, s.duration_s = status, error, round(time.monotonic() - self._started, 2)
        assert s.run_id is not None
        try:
            await self._patient(self.warehouse.finish_run, s.run_id, status, s.as_dict(), error, tries=3)
        finally:
            self.warehouse.release()

    async def mark_failed(self, reason: str) -> None:
        """After the run ended (completed): what orchestrates it failed (the CLI's Prefect never took the
        run, or its flow run failed after the run), so its row says `failed` with the reason, as the CLI does."""
        s = self.summary
        if s.run_id is None or s.status == "failed":
            return
        s.status, s.error = "failed", reason
        try:
            await self._patient(self.warehouse.finish_run, s.run_id, "failed", s.as_dict(), reason, tries=3)
        finally:
            self.warehouse.release()

    # ---- the runs ----------------------------------------------------------------------------------
    async def crawl(self, *, max_pages: int | None = None) -> RunSummary:
        """A scheduled crawl: re-check the list pages from the start URLs, fetch what is due, follow
        pagination, extract what it finds, and first re-extract what earlier runs stored but left stale."""
        source = self.source
        now = datetime.now(UTC)
        await self.seed(source.start_urls)
        starts = [u for u in (normalize_url(url) for url in source.start_urls) if u]
        await self._patient(self.warehouse.make_due, source.name, LIST_KINDS, now, start_urls=starts)
        frontier = self._frontier(claim_due=True, follow_lists=True, max_pages=max_pages or source.max_pages)
        await self._stream(frontier, scan_stored=True)
        return self.summary

    async def fetch_urls(
        self, urls: Sequence[str], *, as_lists: Collection[str] = (), then_due_articles: bool = False
    ) -> RunSummary:
        """A backfill: fetch the given URLs now, whatever their schedule (those in `as_lists` as list
        pages); with `then_due_articles`, also every article due in the frontier afterwards (what the
        list pages revealed). Pagination on given list pages is stored, not followed."""
        lists = {normalize_url(u) for u in as_lists}
        canonical = list(dict.fromkeys(u for u in (normalize_url(url) for url in urls) if u))
        kinds = {u: "list" if u in lists else kind_of(u, self._article_re) for u in canonical}
        await self._patient(
            self.warehouse.add_frontier, [FrontierRow(u, self.source.name, k, None) for u, k in kinds.items()]
        )
        given = [FrontierItem(u, self.source.name, k, None, None, 0) for u, k in kinds.items()]
        frontier = self._frontier(given=given, claim_due=then_due_articles, kinds=("article",), follow_lists=False)
        await self._stream(frontier, scan_stored=False)
        return self.summary

    async def extract_pending(self, *, only_stale: bool = True) -> RunSummary:
        """Re-extract stored pages (no network): those whose extractor or rules version is stale, or all."""
        await self._stream(None, scan_stored=True, only_stale=only_stale)
        return self.summary

    async def seed(self, urls: Sequence[str]) -> int:
        rows = [
            FrontierRow(u, self.source.name, kind_of(u, self._article_re), None)
            for u in (normalize_url(url) for url in urls)
            if u
        ]
        return await self._patient(self.warehouse.add_frontier, rows)

    def _frontier(self, **kwargs: Any) -> Frontier:
        assert self.writer is not None
        return Frontier(
            self.warehouse,
            self.source,
            self.writer,
            batch_size=self.options.batch_size,
            busy=self._in_flight,
            stop=self.stop,
            on_wait=self._on_wait,
            **kwargs,
        )

    # ---- the stream --------------------------------------------------------------------------------
    async def _stream(self, frontier: Frontier | None, *, scan_stored: bool, only_stale: bool = True) -> None:
        assert self.writer is not None and self.extraction is not None
        self.frontier = frontier
        self._phase = {"crawl": "crawling", "backfill": "backfilling"}.get(self.kind, "re-extracting")
        writer_task = asyncio.ensure_future(self.writer.run())
        ticker = asyncio.ensure_future(self._tick())
        producers: list[asyncio.Future] = []
        fetcher: Fetcher | None = None
        try:
            if frontier is not None:
                fetcher = Fetcher(self.source.crawl, self.source.allowed_hosts)
                await fetcher.__aenter__()
                self.fetch = FetchStage(
                    fetcher, self.source, frontier, self.writer, self._extract_fetched, run_id=self.run_id
                )
                producers.append(asyncio.ensure_future(self.fetch.run(self.source.crawl.concurrency)))
            if scan_stored:
                producers.append(asyncio.ensure_future(self._scan_stored(only_stale)))
            await self._until_done_or_stopped(producers, writer_task)
            if not self.stop.requested:
                await self._race(self.extraction.drain(), writer_task)
            if self.stop.requested:  # pages still in extraction stay stored-not-extracted: the next run takes them
                await self.extraction.close(cancel=True)
            await self.writer.close()
            try:
                await writer_task
            except TransientError:
                if not self.stop.requested:
                    raise
                log.warning("stopped while the warehouse was locked: the open window was not committed")
        finally:
            for task in (*producers, ticker):
                task.cancel()
            if not writer_task.done():
                writer_task.cancel()
            await asyncio.gather(*producers, ticker, writer_task, return_exceptions=True)
            if fetcher is not None:
                await fetcher.__aexit__(None, None, None)
            self._report()

    async def _until_done_or_stopped(self, producers: list[asyncio.Future], writer_task: asyncio.Future) -> None:
        """Wait for the producers; a stop request drops the fetches in flight (their pages stay due)."""
        if not producers:
            return
        stop = asyncio.ensure_future(self.stop.wait())
        try:
            pending = set(producers) | {writer_task, stop}
            while pending & set(producers):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is stop:
                        self._phase = "stopping"
                        for producer in producers:
                            producer.cancel()
                        await asyncio.gather(*producers, return_exceptions=True)
                        return
                    if (error := task.exception()) is not None:
                        raise error
                    if task is writer_task:
                        raise RuntimeError("the writer ended before the producers")
        finally:
            stop.cancel()

    async def _race(self, awaitable: Awaitable[None], writer_task: asyncio.Future) -> None:
        """Await `awaitable` unless the writer fails first (then raise its error), or a stop comes."""
        main = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({main, writer_task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if writer_task in done and (error := writer_task.exception()) is not None:
                raise error
        finally:
            main.cancel()
            stop.cancel()

    def _in_flight(self) -> bool:
        fetching = self.fetch.in_flight if self.fetch is not None else 0
        return bool(fetching or (self.extraction is not None and self.extraction.in_flight))

    async def _extract_fetched(self, url: str, html: str, fetched_at: datetime) -> None:
        assert self.extraction is not None
        await self.extraction.submit(Page(url, html, fetched_at))

    async def _scan_stored(self, only_stale: bool) -> None:
        """Stored article pages to extract again, oldest URL first, a batch at a time (back-pressure:
        `submit` waits). Pages this run fetched are left to the fetch stage."""
        assert self.extraction is not None
        extractor_version, rules_version = await self.extraction.known_versions()
        after: str | None = None
        while not self.stop.requested:
            pages = await self._patient(
                self.warehouse.pages_to_extract,
                source_id=self.source.name,
                extractor_version=extractor_version,
                rules_versions={self.source.name: rules_version},
                only_stale=only_stale,
                limit=self.options.batch_size,
                after_url=after,
            )
            if not pages:
                return
            after = pages[-1].url
            for page in pages:
                fetched_at = page.fetched_at if page.fetched_at.tzinfo else page.fetched_at.replace(tzinfo=UTC)
                if self.kind == "crawl" and fetched_at >= self.started_at:
                    continue
                await self.extraction.submit(
                    Page(page.url, page.html, fetched_at, stored=True, html_hash=page.html_hash)
                )

    # ---- outcomes ----------------------------------------------------------------------------------
    def _on_result(self, page: Page, result: Any) -> None:
        """An extraction outcome, in the event loop: to the writer as an article row or a rejection."""
        assert self.writer is not None and self.extraction is not None
        row = outcome_row(self.source, page, result, self.extraction.versions, self.published, datetime.now(UTC))
        self.writer.add_extraction(row, stored=page.stored)
        if self.frontier is not None:
            self.frontier.work_done()

    def _committed(self, window: Window) -> None:
        assert self.writer is not None
        if self.frontier is not None:
            self.frontier.committed([row.url for row in window.fetches], self.writer.generation)

    # ---- waiting and progress ----------------------------------------------------------------------
    async def _patient(self, call: Callable[..., T], *args: Any, what: str = "", tries: int = 0, **kwargs: Any) -> T:
        """A warehouse call in a thread, waiting out a locked file (logged, shown on the progress bar)."""
        attempts = 0

        async def attempt() -> T:
            nonlocal attempts
            attempts += 1
            try:
                return await asyncio.to_thread(call, *args, **kwargs)
            except WarehouseBusy as exc:
                if tries and attempts >= tries:
                    raise
                raise TransientError(WAREHOUSE_BUSY, str(exc)) from exc

        return await patiently(
            attempt, what or getattr(call, "__name__", "warehouse"), stop=self.stop, on_wait=self._on_wait
        )

    def _on_wait(self, status: str | None) -> None:
        self._waiting_for = status
        self._report()

    def progress(self) -> Progress:
        fetch, extraction, writer, frontier = self.fetch, self.extraction, self.writer, self.frontier
        total = frontier.total if frontier is not None else None
        return Progress(
            phase=self._waiting_for or self._phase,
            fetched=fetch.fetched if fetch else 0,
            failed=fetch.failed if fetch else 0,
            extracted=extraction.done if extraction else 0,
            committed_windows=writer.generation if writer else 0,
            queued=(frontier.waiting if frontier else 0) + (extraction.waiting if extraction else 0),
            uncommitted=writer.pending if writer else 0,
            total=total,
            elapsed_s=time.monotonic() - self._started,
        )

    def _report(self) -> None:
        if self._progress is not None:
            self._progress(self.progress())

    async def _tick(self) -> None:
        while True:
            self._report()
            await asyncio.sleep(0.25)
