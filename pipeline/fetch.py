"""The fetch stage: workers take URLs from the frontier and fetch them with the run's one Fetcher.

There are as many workers as the crawl's global concurrency; the Fetcher's politeness (global and
per-host slots, delays, robots.txt) is what actually paces requests, so no worker waits for another
one's page (no batches, no barrier). A fetched page becomes a fetch row for the writer; a list page
is searched for links here (new list pages go straight back to the frontier's lane); an article
page goes on to extraction, which may make the worker wait (back-pressure).

A bug while handling a page (not the network's fault) is logged with its traceback and recorded as
a failed fetch of kind `internal_error`, which is never retried as if the network had failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from crawler import Fetcher, FetchResult, LinkRules, discover
from outcomes import INTERNAL_ERROR
from pipeline.frontier import Frontier
from pipeline.spec import SourceSpec
from pipeline.write import Writer
from warehouse import LIST_KINDS, FetchRow, FrontierItem, FrontierRow

log = logging.getLogger("sieve.pipeline")

PageSink = Callable[[str, str, datetime], Awaitable[None]]  # (url, html, fetched_at): on to extraction


class FetchStage:
    def __init__(
        self,
        fetcher: Fetcher,
        source: SourceSpec,
        frontier: Frontier,
        writer: Writer,
        extract: PageSink,
        *,
        run_id: str | None,
    ) -> None:
        self.fetcher = fetcher
        self.source = source
        self.frontier = frontier
        self.writer = writer
        self.extract = extract
        self.run_id = run_id
        self.link_rules = LinkRules(
            allowed_hosts=source.allowed_hosts,
            list_url_pattern=source.list_url_pattern,
            article_url_pattern=source.article_url_pattern,
        )
        self.in_flight = 0
        self.fetched = 0  # live counts for the progress bar (the summary counts commits)
        self.failed = 0

    async def run(self, workers: int) -> None:
        """Until the frontier has nothing more; a worker's unexpected failure fails the stage."""
        await asyncio.gather(*(self._worker() for _ in range(max(1, workers))))

    async def _worker(self) -> None:
        while True:
            item = await self.frontier.next()
            if item is None:
                return
            self.in_flight += 1
            try:
                await self.fetch_one(item)
            finally:
                self.in_flight -= 1
                self.frontier.work_done()

    async def fetch_one(self, item: FrontierItem) -> None:
        result = await self.fetcher.fetch(item.url, etag=item.etag, last_modified=item.last_modified)
        try:
            discovered, html = self._handle(item, result)
        except Exception as exc:  # a bug in sieve, not the site: a row that says so, and the traceback
            log.exception("internal error handling %s", item.url)
            result.error, result.detail = INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:300]
            discovered, html = [], None
        outcome = result.error or ("unchanged" if result.not_modified else "fetched")
        if result.error:
            self.failed += 1
        else:
            self.fetched += 1
        await self.writer.room()
        self.writer.add_fetch(fetch_row(self.run_id, self.source.name, item.kind, result, html), discovered, outcome)
        if html is not None:
            await self.extract(item.url, html, result.fetched_at)

    def _handle(self, item: FrontierItem, result: FetchResult) -> tuple[list[FrontierRow], str | None]:
        """Links found (for the writer) and the HTML to extract, if any."""
        if not (result.ok and result.text is not None):
            return [], None
        if item.kind not in LIST_KINDS:
            return ([], result.text) if item.kind == "article" else ([], None)
        found = discover(result.text, result.final_url, result.content_type, self.link_rules)
        self.frontier.offer_lists(item.url, found.list_urls)
        self.frontier.offer_articles(item.url, found.article_urls)
        name = self.source.name
        return (
            [FrontierRow(u, name, "list", item.url) for u in found.list_urls]
            + [FrontierRow(u, name, "article", item.url) for u in found.article_urls]
        ), None


def kind_of(url: str, article_re: re.Pattern[str] | None) -> str:
    """What a URL given to a run is: an article (by the source's pattern), a sitemap, a feed or a list."""
    if article_re is not None and article_re.search(url):
        return "article"
    lowered = url.lower()
    if "sitemap" in lowered and lowered.endswith((".xml", ".xml.gz")):
        return "sitemap"
    if lowered.endswith((".rss", ".atom", "/feed", "/rss", ".xml")):
        return "feed"
    return "list"


def fetch_row(run_id: str | None, source_id: str, kind: str, r: FetchResult, html: str | None) -> FetchRow:
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
        html=html,
        retry_after_s=r.retry_after_s,
    )
