"""Commands that run Prefect flows: crawl, backfill, reextract, demo, serve."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import (
    ConfigOption,
    OutputFormat,
    QuietOption,
    VerboseOption,
    _load,
    _require_source,
    app,
    console,
    err,
)
from flows.cli.runner import print_summary
from flows.config import DEFAULT_CONFIG
from flows.early import FlowCall

if TYPE_CHECKING:
    from collections.abc import Callable

    from flows.config import Config
    from flows.pipeline import RunPlan
    from pipeline.summary import RunSummary


def _prefect_env(verbose: bool = False) -> None:
    """Quiet, offline-friendly defaults for Prefect; the user's settings win (serve: it picks its own server)."""
    from flows.prefect_env import apply_quiet_defaults

    apply_quiet_defaults(logging_level="INFO" if verbose else "WARNING")


def _run(
    cfg: Config, call: FlowCall, *, quiet: bool, verbose: bool, label: str, plan: Callable[..., RunPlan] | None = None
) -> list[RunSummary]:
    """Run the flow `call` names; `plan` builds the same run, for the CLI to start before Prefect is up
    (its flow run then runs in the flow process: flows/flow_process.py)."""
    from flows.cli.runner import prepare_prefect, run_flow

    prefect = prepare_prefect(cfg.warehouse.path, verbose=verbose, call=call if plan is not None else None)
    return run_flow(call, prefect, quiet=quiet, label=label, plan=plan)


# ---- flows ------------------------------------------------------------------------------------
@app.command()
def crawl(
    source: Annotated[str, typer.Argument(help="a source name from config.yaml")],
    max_pages: Annotated[int | None, typer.Option(min=1, help="stop after this many fetches")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Crawl SOURCE: list pages, then the articles they link to, into the warehouse."""
    cfg = _load(config)
    _require_source(cfg, source)

    start = FlowCall("crawl", {"source": source, "max_pages": max_pages, "config_path": str(config)})

    def plan(**pipeline: Any) -> RunPlan:
        from flows.pipeline import crawl_plan

        return crawl_plan(cfg, source, max_pages, **pipeline)

    for summary in _run(cfg, start, quiet=quiet, verbose=verbose, label=f"crawling {source}", plan=plan):
        print_summary(summary, f"crawl {source}")


@app.command()
def backfill(
    source: Annotated[str, typer.Argument(help="a source name from config.yaml")],
    url: Annotated[list[str] | None, typer.Option("--url", help="an article URL (repeatable)")] = None,
    urls_file: Annotated[
        Path | None, typer.Option(help="a file with one URL per line", exists=True, dir_okay=False)
    ] = None,
    list_page: Annotated[list[str] | None, typer.Option("--list-page", help="a list page to walk (repeatable)")] = None,
    since: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="keep articles published on or after")
    ] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="keep articles published before")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Fetch given URLs or list pages now, whatever the schedule says."""
    cfg = _load(config)
    _require_source(cfg, source)
    if not (url or urls_file or list_page):
        err.print("nothing to backfill: give --url, --urls-file or --list-page")
        raise typer.Exit(2)

    what: dict[str, Any] = {  # the same backfill, as the flow's parameters and as the CLI's early plan
        "urls": url,
        "urls_file": str(urls_file) if urls_file else None,
        "list_pages": list_page,
        "since": since.date() if since else None,
        "until": until.date() if until else None,
    }

    start = FlowCall("backfill", {"source": source, "config_path": str(config), **what})

    def plan(**pipeline: Any) -> RunPlan:
        from flows.pipeline import backfill_plan

        return backfill_plan(cfg, source, **what, **pipeline)

    for summary in _run(cfg, start, quiet=quiet, verbose=verbose, label=f"backfilling {source}", plan=plan):
        print_summary(summary, f"backfill {source}")


@app.command()
def reextract(
    source: Annotated[str | None, typer.Argument(help="one source (default: all)")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="redo every stored page, not only stale ones")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Re-clean stored pages with the current extractor and rules (no network)."""
    cfg = _load(config)
    _require_source(cfg, source)

    start = FlowCall("reextract", {"source": source, "only_stale": not all_pages, "config_path": str(config)})

    def plan(**pipeline: Any) -> RunPlan:
        from flows.pipeline import reextract_plan

        assert source is not None
        return reextract_plan(cfg, source, not all_pages, **pipeline)

    for summary in _run(
        cfg, start, quiet=quiet, verbose=verbose, label="re-extracting", plan=plan if source is not None else None
    ):
        print_summary(summary, f"reextract {summary.source}")


@app.command()
def demo(
    port: Annotated[
        int | None, typer.Option(help="port of the demo site (default: from the demo source's start URL)")
    ] = None,
    articles: Annotated[int, typer.Option(min=1, help="article pages on the demo site")] = 60,
    config: ConfigOption = DEFAULT_CONFIG,
    quiet: QuietOption = False,
) -> None:
    """Serve the bundled demo aggregator on 127.0.0.1, crawl it, and show what the warehouse holds."""
    from urllib.parse import urlsplit

    from demo import DemoServer, DemoSite
    from flows.cli.data import _print_query

    cfg = _load(config)
    if "demo" not in cfg.sources:
        err.print(f"{config}: sources.demo: missing; the demo needs the demo source")
        raise typer.Exit(2)
    start_url = urlsplit(cfg.sources["demo"].start_urls[0])
    if start_url.hostname not in ("127.0.0.1", "localhost"):
        err.print(f"{config}: sources.demo.start_urls: the demo site is served on 127.0.0.1, not {start_url.hostname}")
        raise typer.Exit(2)
    port = port or start_url.port or 80
    if port != (start_url.port or 80):
        err.print(f"--port {port} differs from sources.demo.start_urls ({start_url.port}); edit the config instead")
        raise typer.Exit(2)
    try:
        server = DemoServer(DemoSite(articles), port=port)
    except OSError as exc:
        err.print(f"cannot serve the demo site on 127.0.0.1:{port}: {exc}")
        raise typer.Exit(1) from None

    start = FlowCall("crawl", {"source": "demo", "config_path": str(config)})

    def plan(**pipeline: Any) -> RunPlan:
        from flows.pipeline import crawl_plan

        return crawl_plan(cfg, "demo", **pipeline)

    with server:
        console.print(f"demo aggregator: {server.base_url}/list/1.html ({articles} articles)")
        summaries = _run(cfg, start, quiet=quiet, verbose=False, label="crawling the demo site", plan=plan)
    for summary in summaries:
        print_summary(summary, "demo crawl")
    console.print(f"warehouse: {cfg.warehouse.path}\n")
    examples = [
        "SELECT source_id, count(*) AS articles, count(dup_of) AS duplicates FROM articles GROUP BY source_id",
        "SELECT title, account, published_at, copies FROM v_articles ORDER BY copies DESC, published_at DESC NULLS LAST LIMIT 5",
    ]
    for sql_text in examples:
        console.print(f'[bold]$ sieve sql "{sql_text}"[/bold]', highlight=False)
        _print_query(cfg, sql_text, OutputFormat.table)


@app.command()
def serve(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Serve one Prefect deployment per source on its cron schedule (starts a local Prefect server if none)."""
    cfg = _load(config)
    _prefect_env(verbose=True)  # served runs send their INFO logs to the UI
    from flows.serve import serve_deployments

    raise typer.Exit(serve_deployments(cfg, config_path=config, console=console))
