"""Prefect flows: crawl, backfill, reextract. Thin over flows/pipeline.py.

One task run per batch of pages (a task run costs 7-10 ms and ~20 KB of server database, so never one
per page). Tasks take the live Pipeline (an httpx client, a process pool), so they use NO_CACHE and
persist no result: large HTML never reaches Prefect's result storage. Page-level retries live in the
crawler; a task retry covers a whole batch, and only for TransientError (a locked file, a dead worker).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE

from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import DEFAULT_CONFIG, load_config
from flows.dask_runner import extraction_executor_factory, task_runner_from_env
from flows.pipeline import Pipeline, PipelineOptions, ProgressFn, RunCounts, TransientError
from warehouse import FrontierItem, PageRow

# The CLI sets this before starting a flow so runs can drive a progress bar; flows stay parameter-pure.
progress_sink: ProgressFn | None = None
pipeline_options: PipelineOptions | None = None


def _transient_only(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


@task(name="process-batch", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2,
      retry_condition_fn=_transient_only)
async def process_batch(pipeline: Pipeline, items: Sequence[FrontierItem]) -> int:
    """Fetch a batch, store pages and the fetch log, extract the articles, store them."""
    await pipeline.process_batch(items)
    return len(items)


@task(name="extract-batch", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2,
      retry_condition_fn=_transient_only)
async def extract_batch(pipeline: Pipeline, pages: Sequence[PageRow]) -> int:
    """Re-extract stored pages (no network) and store the articles."""
    await pipeline.extract_and_store([(p.url, p.html, p.fetched_at) for p in pages])
    return len(pages)


def _pipeline(config_path: str, source: str, kind: str, params: dict[str, Any],
              window: tuple[date | None, date | None] = (None, None)) -> Pipeline:
    config = load_config(config_path)
    options = pipeline_options or PipelineOptions()
    if (executor := extraction_executor_factory()) is not None:   # SIEVE_DASK: extraction on a Dask cluster
        options = dataclasses.replace(options, executor=executor)
    return Pipeline(config, source, kind=kind, params=params, options=options, progress=progress_sink,
                    window=window)


def _task_runner() -> ThreadPoolTaskRunner:
    """Bounded: the default thread pool grows without limit. SIEVE_DASK swaps in a Dask runner."""
    return task_runner_from_env() or ThreadPoolTaskRunner(max_workers=4)


async def _publish(pipeline: Pipeline, title: str, started: float) -> dict[str, Any]:
    counts: RunCounts = pipeline.counts
    duration = round(time.perf_counter() - started, 2)
    failures = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.failures.items())) or "none"
    markdown = "\n".join(
        [
            f"# {title}: {pipeline.source_name}",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| pages fetched | {counts.fetched} |",
            f"| unchanged (304) | {counts.unchanged} |",
            f"| failed | {counts.failed} ({failures}) |",
            f"| new URLs discovered | {counts.discovered} |",
            f"| articles new | {counts.articles_new} |",
            f"| articles updated | {counts.articles_updated} |",
            f"| duplicates | {counts.duplicates} |",
            f"| pages without an article | {counts.rejected} |",
            f"| duration (s) | {duration} |",
            f"| warehouse run_id | {pipeline.run_id} |",
        ]
    )
    key = f"{pipeline.kind}-{pipeline.source_name}".replace("_", "-").lower()
    await acreate_markdown_artifact(markdown=markdown, key=key, description=f"sieve {title} summary")
    summary = counts.as_dict()
    summary.update(duration_s=duration, run_id=pipeline.run_id, source=pipeline.source_name)
    return summary


@flow(name="crawl", log_prints=False, persist_result=False, task_runner=_task_runner())
async def crawl(source: str, max_pages: int | None = None, config_path: str = str(DEFAULT_CONFIG)) -> dict[str, Any]:
    """Crawl one configured source: list pages, then the articles they link to, into the warehouse."""
    logger = get_run_logger()
    started = time.perf_counter()
    pipeline = _pipeline(config_path, source, "crawl", {"max_pages": max_pages})
    async with pipeline:
        logger.info("crawling %s into %s", source, pipeline.config.warehouse.path)

        async def run_batch(items: Sequence[FrontierItem]) -> None:
            await process_batch(pipeline, items)

        await pipeline.crawl(max_pages=max_pages, run_batch=run_batch)
    summary = await _publish(pipeline, "crawl", started)
    logger.info("crawl of %s done: %s", source, summary)
    return summary


@flow(name="backfill", log_prints=False, persist_result=False, task_runner=_task_runner())
async def backfill(
    source: str,
    urls: list[str] | None = None,
    urls_file: str | None = None,
    list_pages: list[str] | None = None,
    since: date | None = None,
    until: date | None = None,
    config_path: str = str(DEFAULT_CONFIG),
) -> dict[str, Any]:
    """Fetch given article URLs (or a file of them) and given list pages now, whatever their schedule.

    `since`/`until` keep articles published on days in [since, until) (Asia/Shanghai unless the source
    says otherwise); the others are recorded as rejections with reason `outside_window`, and their pages
    are still stored, so `sieve reextract --all` can take them later.
    """
    logger = get_run_logger()
    started = time.perf_counter()
    wanted = list(urls or [])
    if urls_file:
        wanted += [line.strip() for line in Path(urls_file).read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    params = {"urls": len(wanted), "urls_file": urls_file, "list_pages": list_pages,
              "since": str(since) if since else None, "until": str(until) if until else None}
    pipeline = _pipeline(config_path, source, "backfill", params, window=(since, until))
    async with pipeline:

        async def run_batch(items: Sequence[FrontierItem]) -> None:
            await process_batch(pipeline, items)

        if list_pages:
            await pipeline.fetch_urls(list_pages, run_batch=run_batch, kind="list")
            # then every article those list pages revealed that is not yet fetched
            await pipeline.crawl(run_batch=run_batch, from_start_urls=False, kinds=("article",))
        if wanted:
            await pipeline.fetch_urls(wanted, run_batch=run_batch)
        logger.info("backfill of %s: %d URLs, %d list pages", source, len(wanted), len(list_pages or []))
    return await _publish(pipeline, "backfill", started)


@flow(name="reextract", log_prints=False, persist_result=False, task_runner=_task_runner())
async def reextract(source: str | None = None, only_stale: bool = True, config_path: str = str(DEFAULT_CONFIG)) -> dict[str, Any]:
    """Re-clean stored pages with the current extractor and rules (no network)."""
    logger = get_run_logger()
    config = load_config(config_path)
    sources = [source] if source else list(config.sources)
    totals: dict[str, Any] = {}
    for name in sources:
        started = time.perf_counter()
        pipeline = _pipeline(config_path, name, "reextract", {"only_stale": only_stale})
        async with pipeline:

            async def run_batch(pages: Sequence[PageRow]) -> None:
                await extract_batch(pipeline, pages)

            await pipeline.extract_pending(only_stale=only_stale, run_batch=run_batch)
        summary = await _publish(pipeline, "reextract", started)
        logger.info("reextract of %s: %s", name, summary)
        totals[name] = summary
    return totals
