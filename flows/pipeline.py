"""The crawl, backfill and re-extraction loops, without Prefect.

Prefect flows (flows/crawl.py) wrap these so each batch is one task run; tests and benchmarks can
drive them directly. Data moves one way: frontier (warehouse) -> fetch (crawler) -> pages and fetch
log (warehouse) -> extract (extractors, in worker processes) -> articles (warehouse). Every batch is
committed before the next one is claimed, so a crash loses at most the batch in flight, and the
next run resumes from the frontier.
"""
from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from crawler import Fetcher, FetchResult, LinkRules, discover, normalize_url
from extractors import EXTRACTOR_VERSION, Article, Rules, rules_version
from flows.extract_worker import extract_chunk, warm_up
from flows.config import Config, SourceConfig
from warehouse import ArticleRow, FetchRow, FrontierItem, FrontierRow, PageRow, Rejection, SourceRow, Warehouse

LIST_KINDS = ("list", "feed", "sitemap")


class TransientError(Exception):
    """A batch failed for a reason that may pass (a locked warehouse file, a dying worker): retry the batch."""


@dataclass
class RunCounts:
    """What a run did. Failed pages are counted here and stored as rows; they never fail the run."""

    fetched: int = 0
    unchanged: int = 0              # 304 Not Modified
    failed: int = 0
    failures: Counter = field(default_factory=Counter)   # error kind -> count
    discovered: int = 0             # new URLs added to the frontier
    articles_new: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0               # pages that held no article
    extracted: int = 0

    def add_extraction(self, counts: Any) -> None:
        self.articles_new += counts.new
        self.articles_updated += counts.updated
        self.articles_unchanged += counts.unchanged
        self.duplicates += counts.duplicates
        self.rejected += counts.rejected

    def as_dict(self) -> dict[str, int]:
        flat = {k: v for k, v in self.__dict__.items() if k != "failures"}
        flat.update({f"failed_{kind}": n for kind, n in sorted(self.failures.items())})
        return flat


ProgressFn = Callable[[str, int, int | None], None]   # (what, advance, total or None)


def _no_progress(what: str, advance: int, total: int | None) -> None:
    pass


@dataclass
class PipelineOptions:
    batch_size: int = 100
    extract_workers: int = 0        # 0: one per core (at least 1); 1: extract in this process
    batches_in_flight: int = 3      # one batch fetches while earlier ones are extracted
    executor: Callable[[], Executor] | None = None   # another extraction pool (a Dask cluster); None = local processes
    list_rounds: int = 8            # list pages followed inside one batch before the rest wait for the frontier


class Pipeline:
    """Everything one run needs: config, warehouse, one Fetcher, one extraction pool, counts."""

    def __init__(
        self,
        config: Config,
        source: str,
        *,
        kind: str = "crawl",
        params: dict[str, Any] | None = None,
        options: PipelineOptions | None = None,
        progress: ProgressFn | None = None,
        window: tuple[date | None, date | None] = (None, None),
    ) -> None:
        self.config = config
        self.window = window    # backfill: keep articles published in [since, until); others become rejections
        self.source_name = source
        self.source: SourceConfig = config.source(source)
        self.kind = kind
        self.params = params or {}
        self.options = options or PipelineOptions()
        self.progress = progress or _no_progress
        # The writer keeps the file between batches (closing it checkpoints, 0.2-0.9 s each time) and
        # lets go when idle for 2 s or when `sieve sql` in another process asks for it.
        self.warehouse = Warehouse(config.warehouse.path, hold_s=2.0)
        self.crawl_settings = config.crawl_settings(source)
        self.rules: Rules = self.source.rules
        self.rules_version = rules_version(self.rules)
        self.link_rules = LinkRules(
            allowed_hosts=self.source.allowed_hosts,
            list_url_pattern=self.source.list_url_pattern,
            article_url_pattern=self.source.article_url_pattern,
        )
        self.counts = RunCounts()
        self.run_id: str | None = None
        self.started_at = datetime.now(timezone.utc)
        self._fetcher: Fetcher | None = None
        self._pool: Executor | None = None
        self._warm: list[Future] = []
        self._seen: set[str] = set()     # URLs fetched or claimed by this run
        self._list_lane = False          # follow pagination inside a batch: scheduled crawls without a page budget
        self._fetch_slot = asyncio.Semaphore(1)
        self._article_re = re.compile(self.source.article_url_pattern) if self.source.article_url_pattern else None

    # ---- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> "Pipeline":
        self.warehouse.migrate()
        await asyncio.to_thread(
            self.warehouse.upsert_sources,
            [SourceRow(self.source_name, self.source.config_hash, self.source.to_json())],
        )
        self.run_id = await asyncio.to_thread(self.warehouse.start_run, self.kind, self.source_name, self.params)
        self.start_pool()
        return self

    async def __aexit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if self._fetcher is not None:
            await self._fetcher.__aexit__(None, None, None)
            self._fetcher = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if exc_type is None:
            status, error = "completed", None
        elif issubclass(exc_type, (KeyboardInterrupt, asyncio.CancelledError)):
            status, error = "cancelled", "interrupted"
        else:
            status, error = "failed", f"{exc_type.__name__}: {exc}"
        assert self.run_id is not None
        try:
            self.warehouse.finish_run(self.run_id, status, self.counts.as_dict(), error)
        finally:
            self.warehouse.release()

    async def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = Fetcher(self.crawl_settings, self.source.allowed_hosts)
            await self._fetcher.__aenter__()
        return self._fetcher

    def start_pool(self) -> None:
        """Start extraction workers in the background; until they are warm, extraction runs in a thread here."""
        if self._pool is not None:
            return
        if self.options.executor is not None:
            self._pool = self.options.executor()
            return
        workers = self.options.extract_workers or (os.cpu_count() or 1)
        if workers <= 1:
            return
        # forkserver, not fork: the parent runs threads (Prefect, httpx) that a fork would copy mid-state;
        # the fork server preloads only the extractor, so a worker starts in well under a second.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["flows.extract_worker"])
        self._pool = ProcessPoolExecutor(workers, mp_context=context)
        self._warm = [self._pool.submit(warm_up) for _ in range(workers)]

    def pool(self) -> Executor | None:
        """The worker pool once every worker has started, else None (extract here meanwhile)."""
        if self._pool is not None and all(f.done() for f in self._warm):
            return self._pool
        return None

    # ---- frontier -------------------------------------------------------------------------
    def kind_of(self, url: str) -> str:
        if self._article_re is not None and self._article_re.search(url):
            return "article"
        lowered = url.lower()
        if "sitemap" in lowered and lowered.endswith((".xml", ".xml.gz")):
            return "sitemap"
        if lowered.endswith((".rss", ".atom", "/feed", "/rss", ".xml")):
            return "feed"
        return "list"

    async def seed(self, urls: Sequence[str], kind: str | None = None) -> int:
        rows = []
        for url in urls:
            canonical = normalize_url(url)
            if canonical:
                rows.append(FrontierRow(canonical, self.source_name, kind or self.kind_of(canonical), None))
        return await asyncio.to_thread(self.warehouse.add_frontier, rows)

    # ---- one batch: fetch, store, extract, store -----------------------------------------------
    async def process_batch(self, items: Sequence[FrontierItem]) -> None:
        # One batch fetches at a time (the fetch phase is this process's CPU: httpx, decoding, discovery)
        # while earlier batches are extracted in the worker processes: the two phases overlap.
        async with self._fetch_slot:
            rows, discovered, to_extract = await self._fetch_phase(items)
        self.progress("fetched", len(rows), None)
        if to_extract:
            await self.extract_and_store(to_extract)

    async def _fetch_phase(self, items: Sequence[FrontierItem]) -> tuple[list[FetchRow], list[FrontierRow], list[tuple[str, str, datetime]]]:
        """Fetch a batch (following new pagination a few rounds), store the fetch log, pages and new links."""
        fetcher = await self.fetcher()
        pending = list(items)
        self._seen.update(item.url for item in pending)
        rows: list[FetchRow] = []
        discovered: list[FrontierRow] = []
        to_extract: list[tuple[str, str, datetime]] = []
        rounds = 0
        while pending:
            results: list[FetchResult] = await asyncio.gather(
                *(fetcher.fetch(item.url, etag=item.etag, last_modified=item.last_modified) for item in pending)
            )
            next_lists: list[FrontierItem] = []
            for item, result in zip(pending, results):
                keep_html = result.ok and result.text is not None and item.kind == "article"
                rows.append(_fetch_row(self.run_id, self.source_name, item.kind, result, keep_html))
                if result.error:
                    self.counts.failed += 1
                    self.counts.failures[result.error] += 1
                elif result.not_modified:
                    self.counts.unchanged += 1
                else:
                    self.counts.fetched += 1
                if result.ok and result.text is not None:
                    if item.kind in LIST_KINDS:
                        found = discover(result.text, result.final_url, result.content_type, self.link_rules)
                        discovered += [FrontierRow(u, self.source_name, "list", item.url) for u in found.list_urls]
                        discovered += [FrontierRow(u, self.source_name, "article", item.url) for u in found.article_urls]
                        next_lists += [FrontierItem(u, self.source_name, "list", None, None, 0)
                                       for u in found.list_urls if u not in self._seen]
                    elif keep_html:
                        to_extract.append((item.url, result.text, result.fetched_at))
            # Pagination is a chain (page N links to N+1, N+2): follow new list pages within this batch
            # instead of waiting a commit and a frontier query per link. Bounded, and off when a page
            # budget applies, so batches stay small and max_pages stays exact.
            rounds += 1
            if self._list_lane and rounds < self.options.list_rounds:
                pending = list({item.url: item for item in next_lists}.values())
                self._seen.update(item.url for item in pending)
            else:
                pending = []
        revisit = timedelta(hours=self.crawl_settings.revisit_after_hours)
        try:
            await asyncio.to_thread(self.warehouse.record_fetches, rows, revisit_after=revisit, discovered=discovered)
        except Exception as exc:  # the file is locked or the disk hiccuped: the batch may be retried whole
            raise TransientError(f"storing fetched batch failed: {exc}") from exc
        return rows, discovered, to_extract

    def _frontier_size(self) -> int:
        result = self.warehouse.query("SELECT count(*) FROM frontier WHERE source_id = ?", [self.source_name])
        return int(result.rows[0][0])

    async def extract_and_store(self, pages: Sequence[tuple[str, str, datetime]]) -> None:
        """Extract (url, html, fetched_at) pages in the worker pool and store articles and rejections."""
        pool = self.pool()
        loop = asyncio.get_running_loop()
        chunks = _chunks(list(pages), max(1, len(pages) // (4 * (os.cpu_count() or 1)) or 1))
        if pool is None:
            outputs = [await asyncio.to_thread(extract_chunk, chunk, self.rules) for chunk in chunks]
        else:
            outputs = await asyncio.gather(*(loop.run_in_executor(pool, extract_chunk, chunk, self.rules) for chunk in chunks))
        now = datetime.now(timezone.utc)
        articles: list[ArticleRow] = []
        rejections: list[Rejection] = []
        for output in outputs:
            for url, result in output:
                if isinstance(result, Article) and not self._in_window(result):
                    rejections.append(Rejection(url, self.source_name, "outside_window",
                                                result.extractor_version or EXTRACTOR_VERSION, self.rules_version, now))
                elif isinstance(result, Article):
                    articles.append(_article_row(self.source_name, url, result, now))
                else:
                    rejections.append(
                        Rejection(url, self.source_name, result.reason, result.extractor_version or EXTRACTOR_VERSION,
                                  result.rules_version or self.rules_version, now)
                    )
        try:
            counts = await asyncio.to_thread(self.warehouse.record_extractions, articles, rejections)
        except Exception as exc:
            raise TransientError(f"storing extracted batch failed: {exc}") from exc
        self.counts.extracted += len(pages)
        self.counts.add_extraction(counts)
        self.progress("extracted", len(pages), None)

    def _in_window(self, article: Article) -> bool:
        since, until = self.window
        if since is None and until is None:
            return True
        if article.published_at is None:
            return False    # a window asks for dated articles; an undated one cannot be shown to fall inside
        day = article.published_at.astimezone(ZoneInfo(self.rules.timezone)).date()
        return (since is None or day >= since) and (until is None or day < until)

    # ---- loops -----------------------------------------------------------------------------
    async def crawl(
        self,
        *,
        max_pages: int | None = None,
        run_batch: Callable[[Sequence[FrontierItem]], Awaitable[None]] | None = None,
        from_start_urls: bool = True,
        kinds: Sequence[str] | None = None,
    ) -> RunCounts:
        """Fetch what the frontier holds due until it is empty or max_pages have been fetched.

        A scheduled crawl starts from the source's start URLs and re-checks its list pages; a backfill
        passes from_start_urls=False and kinds=("article",) to fetch only what its list pages revealed.
        """
        run_batch = run_batch or self.process_batch
        max_pages = max_pages or self.source.max_pages
        self._list_lane = max_pages is None and from_start_urls
        await self.extract_pending(run_batch=None)   # finish what a crashed run stored but did not extract
        now = datetime.now(timezone.utc)
        if from_start_urls:
            await self.seed(self.source.start_urls)
            await asyncio.to_thread(self.warehouse.make_due, self.source_name, LIST_KINDS, now)
        frontier_before = await asyncio.to_thread(self._frontier_size)
        claimed = 0
        in_flight: dict[asyncio.Task, set[str]] = {}
        while True:
            busy = set().union(*in_flight.values()) if in_flight else set()
            room = self.options.batches_in_flight - len(in_flight)
            items: list[FrontierItem] = []
            if room > 0 and (max_pages is None or claimed < max_pages):
                limit = self.options.batch_size
                if max_pages is not None:
                    limit = min(limit, max_pages - claimed)
                due = await asyncio.to_thread(self.warehouse.due, self.source_name, now, limit + len(busy), kinds)
                items = [item for item in due if item.url not in busy and item.url not in self._seen][:limit]
            if items:
                claimed += len(items)
                task = asyncio.create_task(run_batch(items))
                in_flight[task] = {item.url for item in items}
                continue
            if not in_flight:
                break
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                in_flight.pop(task)
                if task.exception() is not None:   # a batch that failed after its retries fails the run:
                    for other in in_flight:        # stop the others rather than leave them running unowned
                        other.cancel()
                    await asyncio.gather(*in_flight, return_exceptions=True)
                    task.result()
        self.counts.discovered = await asyncio.to_thread(self._frontier_size) - frontier_before
        return self.counts

    async def fetch_urls(
        self,
        urls: Sequence[str],
        *,
        run_batch: Callable[[Sequence[FrontierItem]], Awaitable[None]] | None = None,
        kind: str | None = None,
    ) -> RunCounts:
        """Backfill: fetch the given URLs now (adding them to the frontier), whatever their schedule."""
        run_batch = run_batch or self.process_batch
        canonical = [u for u in (normalize_url(url) for url in urls) if u]
        await self.seed(canonical, kind=kind)
        items = [FrontierItem(u, self.source_name, kind or self.kind_of(u), None, None, 0)
                 for u in dict.fromkeys(canonical)]
        for start in range(0, len(items), self.options.batch_size):
            await run_batch(items[start : start + self.options.batch_size])
        return self.counts

    async def extract_pending(
        self,
        *,
        only_stale: bool = True,
        source_id: str | None = None,
        run_batch: Callable[[Sequence[PageRow]], Awaitable[None]] | None = None,
    ) -> RunCounts:
        """Re-extract stored pages (no network) whose extractor or rules version is stale."""
        source_id = source_id or self.source_name
        after: str | None = None
        while True:
            pages = await asyncio.to_thread(
                self.warehouse.pages_to_extract,
                source_id=source_id,
                extractor_version=EXTRACTOR_VERSION,
                rules_versions={self.source_name: self.rules_version},
                only_stale=only_stale,
                limit=self.options.batch_size,
                after_url=after,
            )
            if not pages:
                return self.counts
            after = pages[-1].url
            batch = [(p.url, p.html, p.fetched_at) for p in pages]
            if run_batch is None:
                await self.extract_and_store(batch)
            else:
                await run_batch(pages)


def article_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:20]


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)] or []


def _fetch_row(run_id: str | None, source_id: str, kind: str, r: FetchResult, keep_html: bool) -> FetchRow:
    return FetchRow(
        run_id=run_id,
        source_id=source_id,
        url=r.url,
        kind=kind,
        final_url=r.final_url,
        status=r.status,
        error=r.error,
        detail=r.detail,
        content_type=r.content_type,
        nbytes=r.nbytes,
        elapsed_ms=r.elapsed_ms,
        encoding=r.encoding,
        replaced=r.replaced,
        attempts=r.attempts,
        etag=r.etag,
        last_modified=r.last_modified,
        fetched_at=r.fetched_at,
        html=r.text if keep_html else None,
    )


def _article_row(source_id: str, url: str, a: Article, now: datetime) -> ArticleRow:
    return ArticleRow(
        article_id=article_id(url),
        source_id=source_id,
        url=url,
        title=a.title,
        author=a.author,
        account=a.account,
        published_at=a.published_at,
        text=a.text,
        content_hash=a.content_hash,
        simhash=a.simhash,
        flags=",".join(a.flags),
        extractor_version=a.extractor_version or EXTRACTOR_VERSION,
        rules_version=a.rules_version,
        extracted_at=now,
    )



async def run_crawl(
    config: Config,
    source: str,
    *,
    max_pages: int | None = None,
    options: PipelineOptions | None = None,
    progress: ProgressFn | None = None,
) -> RunCounts:
    """A whole crawl without Prefect (tests, benchmarks, embedding): the flow does the same, batch by batch."""
    async with Pipeline(config, source, options=options, progress=progress) as pipeline:
        await pipeline.crawl(max_pages=max_pages)
    return pipeline.counts
