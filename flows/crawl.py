"""Prefect flows: crawl, backfill, reextract. Thin over the streaming pipeline (pipeline/).

Prefect orchestrates at the grain of a commit window: each window the writer commits is one task run
(`commit-window`, every N rows or T seconds), never one per page (a task run costs 7-10 ms and ~20 KB
of server database). Its parameter is the window itself, an opaque object Prefect neither walks nor
persists: HTML never reaches Prefect's result storage. Page-level retries live in the crawler; the
task retries a window on TransientError only (a locked warehouse file), which is safe because a
window is one transaction and counts move only after it commits.

What a run does is a `RunPlan` (flows/pipeline.py). A flow builds its own, or adopts the one the CLI
started before Prefect was ready (flows/early.py, flows/flow_process.py: its first windows, committed
then, are reported as task runs first). A caller hands a flow what cannot be a flow parameter (a
progress callback, Ctrl-C, a benchmark's sizing, a started run) through `RunHooks`, set for one call
with `run_hooks(...)`. Either way the flow sees the run's end as an `EndedRun`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.states import Cancelled
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.config import DEFAULT_CONFIG, load_config
from flows.dask_runner import extraction_executor_factory, task_runner_from_env
from flows.early import CommittedWindow, EndedRun, RunHooks, current_hooks, run_hooks
from outcomes import TransientError

if TYPE_CHECKING:  # the pipeline is imported when a flow builds a run: the flow process never does
    from flows.pipeline import RunPlan
    from pipeline.write import Window

__all__ = ["RunHooks", "backfill", "commit_window", "crawl", "reextract", "run_hooks"]


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: only a TransientError (a locked file) is worth another attempt.

    In an async task `state.result()` returns a coroutine instead of raising, so the exception is read
    from the state itself: the engine builds the Failed state it hands here with the exception as data.
    """
    return isinstance(getattr(state, "data", None), TransientError)


@task(
    name="commit-window",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_transient,
)
async def commit_window(window: Window | CommittedWindow) -> dict[str, int]:
    """Commit one window of the writer (fetch log, pages, frontier, articles) in one transaction. A window
    the run committed before this flow run existed (the CLI starts fetching while Prefect comes up) is
    reported, not committed again: `committed_before_flow_run` says so."""
    if isinstance(window, CommittedWindow):
        return {
            "rows": window.rows,
            "new_urls": window.added,
            **window.counts.as_dict(),
            "committed_before_flow_run": 1,
        }
    added, counts = await window.commit()
    return {"rows": window.rows, "new_urls": added, **counts.as_dict()}


async def _commit(window: Window | CommittedWindow) -> tuple[int, Any]:
    try:
        result = await commit_window(window)
    finally:  # counted, so the CLI can wait for its temporary server to record them before stopping it
        run = FlowRunContext.get()
        if (hooks := current_hooks()) is not None and run is not None and run.flow_run is not None:
            run_id = str(run.flow_run.id)
            hooks.task_runs[run_id] = hooks.task_runs.get(run_id, 0) + 1
    from warehouse import ExtractionCounts

    counts = ExtractionCounts(**{k: result[k] for k in ("new", "updated", "unchanged", "duplicates", "rejected")})
    return result["new_urls"], counts


def _pipeline_kwargs(hooks: RunHooks) -> dict[str, Any]:
    """What a plan built by a flow gets from the caller's hooks, and windows committed as task runs."""
    from pipeline.spec import StreamOptions

    options = hooks.options
    if (executor := extraction_executor_factory()) is not None:  # SIEVE_DASK: extraction on a Dask cluster
        options = dataclasses.replace(options or StreamOptions(), executor=executor)
    return {"options": options, "progress": hooks.progress, "commit": _commit, "stop": hooks.stop}


def _plans() -> ModuleType:
    """flows/pipeline.py, imported when a flow builds its own run (never in the flow process)."""
    import flows.pipeline

    return flows.pipeline


async def _execute(kind: str, source: str, make_plan: Callable[..., RunPlan]) -> EndedRun:
    """Run the plan the caller started for this flow (adopting it), or build and run one here."""
    hooks = current_hooks() or RunHooks()
    early = hooks.take_early(kind, source)
    if early is not None:
        return await early.adopt(_commit)
    plan = make_plan(**_pipeline_kwargs(hooks))
    await plan.run()
    return EndedRun.of(plan)


def _ended(run: EndedRun, summary: Any) -> Any:
    """The flow's return: its summary, or a Cancelled state when it was asked to stop (Ctrl-C), so the
    Prefect UI says what happened; the summary is then in the run row, the artifact and the hooks."""
    if run.stopped:
        return Cancelled(message="interrupted: what was committed is kept; the next run resumes")
    return summary


def _task_runner() -> TaskRunner[Any]:
    """Bounded: the default thread pool grows without limit. SIEVE_DASK swaps in a Dask runner."""
    return task_runner_from_env() or ThreadPoolTaskRunner(max_workers=4)


async def _publish(run: EndedRun) -> dict[str, Any]:
    """The run's summary as the Prefect artifact; the same object is `crawl_runs.counts` and the CLI table."""
    summary = run.summary
    key = f"{run.kind}-{run.source}".replace("_", "-").lower()
    await acreate_markdown_artifact(markdown=summary.markdown(), key=key, description=f"sieve {run.kind} summary")
    hooks = current_hooks()
    if hooks is not None:
        hooks.summaries.append(summary)
    return summary.as_dict()


@flow(name="crawl", log_prints=False, persist_result=False, task_runner=_task_runner())
async def crawl(source: str, max_pages: int | None = None, config_path: str = str(DEFAULT_CONFIG)) -> dict[str, Any]:
    """Crawl one configured source: list pages, then the articles they link to, into the warehouse."""
    logger = get_run_logger()
    run = await _execute(
        "crawl", source, lambda **kw: _plans().crawl_plan(load_config(config_path), source, max_pages, **kw)
    )
    summary = await _publish(run)
    logger.info("crawl of %s into %s %s: %s", source, run.warehouse, summary["status"], summary)
    return _ended(run, summary)


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
    run = await _execute(
        "backfill",
        source,
        lambda **kw: _plans().backfill_plan(
            load_config(config_path),
            source,
            urls=urls,
            urls_file=urls_file,
            list_pages=list_pages,
            since=since,
            until=until,
            **kw,
        ),
    )
    logger.info("backfill of %s: %s", source, run.log_line)
    return _ended(run, await _publish(run))


@flow(name="reextract", log_prints=False, persist_result=False, task_runner=_task_runner())
async def reextract(
    source: str | None = None, only_stale: bool = True, config_path: str = str(DEFAULT_CONFIG)
) -> dict[str, Any]:
    """Re-clean stored pages with the current extractor and rules (no network)."""
    logger = get_run_logger()
    config = load_config(config_path)
    totals: dict[str, Any] = {}
    for name in [source] if source else list(config.sources):
        run = await _execute(
            "reextract", name, lambda name=name, **kw: _plans().reextract_plan(config, name, only_stale, **kw)
        )
        totals[name] = await _publish(run)
        logger.info("reextract of %s: %s", name, totals[name])
        if run.stopped:
            return _ended(run, totals)
    return totals
