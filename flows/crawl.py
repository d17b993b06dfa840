"""Prefect flows: crawl, backfill, reextract. Thin over the streaming pipeline (pipeline/).

Prefect orchestrates at the grain of a commit window: each window the writer commits is one task run
(`commit-window`, every N rows or T seconds), never one per page (a task run costs 7-10 ms and ~20 KB
of server database). Its parameter is the window itself, an opaque object Prefect neither walks nor
persists: HTML never reaches Prefect's result storage. Page-level retries live in the crawler; the
task retries a window on TransientError only (a locked warehouse file), which is safe because a
window is one transaction and counts move only after it commits.

A CLI run hands a flow what cannot be a flow parameter (a progress callback, Ctrl-C, a benchmark's
sizing) through `RunHooks`, set for the duration of one call with `run_hooks(...)`.
"""
from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Cancelled
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import DEFAULT_CONFIG, load_config
from flows.dask_runner import extraction_executor_factory, task_runner_from_env
from flows.pipeline import Pipeline
from outcomes import TransientError
from pipeline.run import ProgressFn
from pipeline.spec import PublishedWindow, StopSignal, StreamOptions
from pipeline.summary import RunSummary
from pipeline.write import Window


@dataclass
class RunHooks:
    """What the caller of a flow (the CLI, a benchmark) gives the runs it starts in this process."""

    progress: ProgressFn | None = None
    stop: StopSignal | None = None
    options: StreamOptions | None = None
    summaries: list[RunSummary] = field(default_factory=list)   # every run's summary, as it ended


_HOOKS: contextvars.ContextVar[RunHooks | None] = contextvars.ContextVar("sieve_run_hooks", default=None)


@contextmanager
def run_hooks(hooks: RunHooks) -> Iterator[RunHooks]:
    """`with run_hooks(RunHooks(progress=...)): asyncio.run(crawl(...))`: the flows started inside see them."""
    token = _HOOKS.set(hooks)
    try:
        yield hooks
    finally:
        _HOOKS.reset(token)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: only a TransientError (a locked file) is worth another attempt.

    In an async task `state.result()` returns a coroutine instead of raising, so the exception is read
    from the state itself: the engine builds the Failed state it hands here with the exception as data.
    """
    return isinstance(getattr(state, "data", None), TransientError)


@task(name="commit-window", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=1,
      retry_condition_fn=retry_transient)
async def commit_window(window: Window) -> dict[str, int]:
    """Commit one window of the writer (fetch log, pages, frontier, articles) in one transaction."""
    added, counts = await window.commit()
    return {"rows": window.rows, "new_urls": added, **counts.as_dict()}


async def _commit(window: Window) -> tuple[int, Any]:
    result = await commit_window(window)
    from warehouse import ExtractionCounts

    counts = ExtractionCounts(**{k: result[k] for k in ("new", "updated", "unchanged", "duplicates", "rejected")})
    return result["new_urls"], counts


def _pipeline(config_path: str, source: str, kind: str, params: dict[str, Any],
              window: PublishedWindow = PublishedWindow()) -> Pipeline:
    hooks = _HOOKS.get() or RunHooks()
    config = load_config(config_path)
    options = hooks.options
    if (executor := extraction_executor_factory()) is not None:   # SIEVE_DASK: extraction on a Dask cluster
        options = dataclasses.replace(options or StreamOptions(), executor=executor)
    return Pipeline(config, source, kind=kind, params=params, options=options, progress=hooks.progress,
                    window=window, commit=_commit, stop=hooks.stop)


def _ended(pipeline: Pipeline, summary: Any) -> Any:
    """The flow's return: its summary, or a Cancelled state when it was asked to stop (Ctrl-C), so the
    Prefect UI says what happened; the summary is then in the run row, the artifact and the hooks."""
    if pipeline.stop.requested:
        return Cancelled(message="interrupted: what was committed is kept; the next run resumes")
    return summary


def _task_runner() -> ThreadPoolTaskRunner:
    """Bounded: the default thread pool grows without limit. SIEVE_DASK swaps in a Dask runner."""
    return task_runner_from_env() or ThreadPoolTaskRunner(max_workers=4)


async def _publish(pipeline: Pipeline) -> dict[str, Any]:
    """The run's summary as the Prefect artifact; the same object is `crawl_runs.counts` and the CLI table."""
    summary = pipeline.summary
    key = f"{pipeline.kind}-{pipeline.source.name}".replace("_", "-").lower()
    await acreate_markdown_artifact(markdown=summary.markdown(), key=key, description=f"sieve {pipeline.kind} summary")
    hooks = _HOOKS.get()
    if hooks is not None:
        hooks.summaries.append(summary)
    return summary.as_dict()


@flow(name="crawl", log_prints=False, persist_result=False, task_runner=_task_runner())
async def crawl(source: str, max_pages: int | None = None, config_path: str = str(DEFAULT_CONFIG)) -> dict[str, Any]:
    """Crawl one configured source: list pages, then the articles they link to, into the warehouse."""
    logger = get_run_logger()
    pipeline = _pipeline(config_path, source, "crawl", {"max_pages": max_pages})
    logger.info("crawling %s into %s", source, pipeline.warehouse.path)
    async with pipeline:
        await pipeline.crawl(max_pages=max_pages)
    summary = await _publish(pipeline)
    logger.info("crawl of %s %s: %s", source, summary["status"], summary)
    return _ended(pipeline, summary)


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
    """Fetch given article URLs (or a file of them) and given list pages now, whatever their schedule,
    then every article those list pages revealed.

    `since`/`until` keep articles published on days in [since, until) (Asia/Shanghai unless the source
    says otherwise); the others are recorded as rejections with reason `outside_window`, and their pages
    are still stored, so `sieve reextract --all` can take them later.
    """
    logger = get_run_logger()
    wanted = list(urls or [])
    if urls_file:
        wanted += [line.strip() for line in Path(urls_file).read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    params = {"urls": len(wanted), "urls_file": urls_file, "list_pages": list_pages,
              "since": str(since) if since else None, "until": str(until) if until else None}
    pipeline = _pipeline(config_path, source, "backfill", params, window=PublishedWindow(since, until))
    async with pipeline:
        await pipeline.fetch_urls([*(list_pages or []), *wanted], then_due_articles=bool(list_pages),
                                  as_lists=list_pages or [])
    logger.info("backfill of %s: %d URLs, %d list pages", source, len(wanted), len(list_pages or []))
    return _ended(pipeline, await _publish(pipeline))


@flow(name="reextract", log_prints=False, persist_result=False, task_runner=_task_runner())
async def reextract(source: str | None = None, only_stale: bool = True, config_path: str = str(DEFAULT_CONFIG)) -> dict[str, Any]:
    """Re-clean stored pages with the current extractor and rules (no network)."""
    logger = get_run_logger()
    config = load_config(config_path)
    totals: dict[str, Any] = {}
    for name in [source] if source else list(config.sources):
        pipeline = _pipeline(config_path, name, "reextract", {"only_stale": only_stale})
        async with pipeline:
            await pipeline.extract_pending(only_stale=only_stale)
        totals[name] = await _publish(pipeline)
        logger.info("reextract of %s: %s", name, totals[name])
        if pipeline.stop.requested:
            return _ended(pipeline, totals)
    return totals
