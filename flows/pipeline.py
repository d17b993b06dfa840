"""From a loaded config to the pipeline package's plain values, and a whole crawl without Prefect.

The stages live in `pipeline/` (frontier, fetch, extract, write); this is the bridge that keeps
config loading at the top: `pipeline` never reads config.yaml.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from flows.config import Config
from pipeline.run import Pipeline as StreamPipeline
from pipeline.run import ProgressFn
from pipeline.spec import SourceSpec, StreamOptions
from pipeline.summary import RunSummary

PipelineOptions = StreamOptions   # the name benchmarks and older callers use


def source_spec(config: Config, name: str) -> SourceSpec:
    source = config.source(name)
    return SourceSpec(
        name=name, start_urls=source.start_urls, allowed_hosts=source.allowed_hosts,
        crawl=config.crawl_settings(name), rules=source.rules, list_url_pattern=source.list_url_pattern,
        article_url_pattern=source.article_url_pattern, max_pages=source.max_pages,
        max_list_pages=source.max_list_pages, max_depth=source.max_depth, config_hash=source.config_hash,
        config_json=source.to_json(),
    )


def stream_options(config: Config, base: StreamOptions | None = None) -> StreamOptions:
    """The config's `pipeline:` block, except where `base` (a caller's sizing: a test, a benchmark)
    sets a field away from its default."""
    p = config.pipeline
    from_config = {"extract_workers": p.extract_workers, "extract_budget_s": p.extract_budget_seconds,
                   "commit_rows": p.commit_rows, "commit_seconds": p.commit_seconds}
    if base is None:
        return StreamOptions(**from_config)
    default = StreamOptions()
    keep = {k: v for k, v in from_config.items() if getattr(base, k) == getattr(default, k)}
    return dataclasses.replace(base, **keep)


class Pipeline(StreamPipeline):
    """The pipeline for one source of a loaded config."""

    def __init__(self, config: Config, source: str, *, options: StreamOptions | None = None, **kwargs: Any) -> None:
        super().__init__(source_spec(config, source), config.warehouse.path,
                         options=stream_options(config, options), **kwargs)


async def run_crawl(config: Config, source: str, *, max_pages: int | None = None,
                    options: StreamOptions | None = None, progress: ProgressFn | None = None) -> RunSummary:
    """A whole crawl without Prefect (tests, benchmarks, embedding): the flow runs the same stream."""
    async with Pipeline(config, source, options=options, progress=progress) as pipeline:
        await pipeline.crawl(max_pages=max_pages)
    return pipeline.summary
