"""From a loaded config to the pipeline package's plain values, what each kind of run does, and a whole
crawl without Prefect.

The stages live in `pipeline/` (frontier, fetch, extract, write); this is the bridge that keeps
config loading at the top: `pipeline` never reads config.yaml. It never imports Prefect either: the
CLI builds a run's `RunPlan` here and starts it while Prefect is still being imported (flows/early.py),
and the flows in flows/crawl.py build the same plans when nothing started one for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from flows.config import Config
from pipeline.run import Pipeline as StreamPipeline, ProgressFn
from pipeline.spec import PublishedWindow, SourceSpec, StreamOptions
from pipeline.summary import RunSummary

PipelineOptions = StreamOptions  # the name benchmarks and older callers use


def source_spec(config: Config, name: str) -> SourceSpec:
    source = config.source(name)
    return SourceSpec(
        name=name,
        start_urls=source.start_urls,
        allowed_hosts=source.allowed_hosts,
        crawl=config.crawl_settings(name),
        rules=source.rules,
        list_url_pattern=source.list_url_pattern,
        article_url_pattern=source.article_url_pattern,
        max_pages=source.max_pages,
        max_list_pages=source.max_list_pages,
        max_depth=source.max_depth,
        config_hash=source.config_hash,
        config_json=source.to_json(),
    )


def stream_options(config: Config, base: StreamOptions | None = None) -> StreamOptions:
    """The config's `pipeline:` block, except where `base` (a caller's sizing: a test, a benchmark)
    sets a field away from its default."""
    p = config.pipeline
    from_config: dict[str, Any] = {
        "extract_workers": p.extract_workers,
        "extract_budget_s": p.extract_budget_seconds,
        "commit_rows": p.commit_rows,
        "commit_seconds": p.commit_seconds,
    }
    if base is None:
        return StreamOptions(**from_config)
    default = StreamOptions()
    keep = {k: v for k, v in from_config.items() if getattr(base, k) == getattr(default, k)}
    return dataclasses.replace(base, **keep)


class Pipeline(StreamPipeline):
    """The pipeline for one source of a loaded config."""

    def __init__(self, config: Config, source: str, *, options: StreamOptions | None = None, **kwargs: Any) -> None:
        super().__init__(
            source_spec(config, source), config.warehouse.path, options=stream_options(config, options), **kwargs
        )


# ---- what each kind of run does ------------------------------------------------------------------------
@dataclass
class RunPlan:
    """One run of one source: its pipeline and what to do with it. `run()` opens the pipeline (run row),
    does the work, closes it (final status and counts in the run row) and returns its summary."""

    pipeline: Pipeline
    work: Callable[[Pipeline], Awaitable[Any]]
    log_line: str = ""  # what the flow logs once the run is done
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.pipeline.kind

    @property
    def source(self) -> str:
        return self.pipeline.source.name

    def preload(self) -> None:
        """Import everything the run will need before its first fetch (see crawler.transport.preload)."""
        from crawler.transport import preload

        preload(self.pipeline.source.crawl)

    async def run(self) -> RunSummary:
        async with self.pipeline:
            await self.work(self.pipeline)
        return self.pipeline.summary


def crawl_plan(config: Config, source: str, max_pages: int | None = None, **pipeline: Any) -> RunPlan:
    """A scheduled crawl: start URLs, what is due, pagination; stale stored pages re-extracted."""
    p = Pipeline(config, source, kind="crawl", params={"max_pages": max_pages}, **pipeline)
    return RunPlan(p, lambda run: run.crawl(max_pages=max_pages))


def backfill_plan(
    config: Config,
    source: str,
    *,
    urls: list[str] | None = None,
    urls_file: str | None = None,
    list_pages: list[str] | None = None,
    since: date | None = None,
    until: date | None = None,
    **pipeline: Any,
) -> RunPlan:
    """Given URLs (and a file of them) and list pages now, then what the list pages revealed."""
    wanted = list(urls or [])
    if urls_file:
        wanted += [
            line.strip()
            for line in Path(urls_file).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    params = {
        "urls": len(wanted),
        "urls_file": urls_file,
        "list_pages": list_pages,
        "since": str(since) if since else None,
        "until": str(until) if until else None,
    }
    p = Pipeline(config, source, kind="backfill", params=params, window=PublishedWindow(since, until), **pipeline)
    lists = list(list_pages or [])
    return RunPlan(
        p,
        lambda run: run.fetch_urls([*lists, *wanted], then_due_articles=bool(lists), as_lists=lists),
        log_line=f"{len(wanted)} URLs, {len(lists)} list pages",
    )


def reextract_plan(config: Config, source: str, only_stale: bool = True, **pipeline: Any) -> RunPlan:
    """Stored pages extracted again (stale ones, or all); no network."""
    p = Pipeline(config, source, kind="reextract", params={"only_stale": only_stale}, **pipeline)
    return RunPlan(p, lambda run: run.extract_pending(only_stale=only_stale))


async def run_crawl(
    config: Config,
    source: str,
    *,
    max_pages: int | None = None,
    options: StreamOptions | None = None,
    progress: ProgressFn | None = None,
) -> RunSummary:
    """A whole crawl without Prefect (tests, benchmarks, embedding): the flow runs the same stream."""
    return await crawl_plan(config, source, max_pages, options=options, progress=progress).run()
