"""Commands that run Prefect flows: crawl, backfill, reextract, demo, serve."""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from flows.cli.common import (DEFAULT_CONFIG, ConfigOption, OutputFormat, QuietOption, VerboseOption, _load,
                              _require_source, app, console, err)


def _prefect_env(verbose: bool = False) -> None:
    """Quiet, offline-friendly defaults for Prefect's temporary server; the user's settings win."""
    from flows.prefect_env import apply_quiet_defaults

    apply_quiet_defaults(logging_level="INFO" if verbose else "WARNING")


def _run_flow(coro_factory: Any, *, quiet: bool, label: str) -> dict[str, Any]:
    """Run an async flow with a progress bar; exit 1 when the run itself fails, 130 on Ctrl-C."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    import flows.crawl as crawl_flows

    show = not quiet and sys.stderr.isatty()
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=err, disable=not show, transient=True)
    counters: dict[str, int] = {}
    bar = progress.add_task(label, total=None)

    def on_progress(what: str, advance: int, total: int | None) -> None:
        counters[what] = counters.get(what, 0) + advance
        shown = "  ".join(f"{k} {v}" for k, v in counters.items())
        progress.update(bar, description=f"{label}  {shown}")

    crawl_flows.progress_sink = on_progress
    try:
        with progress:
            return asyncio.run(coro_factory())
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: every batch finished before Ctrl-C is committed; run again to resume")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:  # the run itself failed (pages failing never get here)
        err.print(f"[red]run failed[/red]: {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        crawl_flows.progress_sink = None


def _print_summary(summary: dict[str, Any], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    labels = [
        ("fetched", "pages fetched"), ("unchanged", "unchanged (304)"), ("failed", "failed"),
        ("discovered", "new URLs discovered"), ("articles_new", "articles new"),
        ("articles_updated", "articles updated"), ("duplicates", "duplicates"),
        ("rejected", "pages without an article"), ("duration_s", "duration (s)"),
    ]
    for key, label in labels:
        if key in summary:
            table.add_row(label, str(summary[key]))
    for key, value in sorted(summary.items()):
        if key.startswith("failed_"):
            table.add_row(f"  failed: {key.removeprefix('failed_')}", str(value))
    console.print(table)


# ---- flows ------------------------------------------------------------------------------------
@app.command()
def crawl(
    source: Annotated[str, typer.Argument(help="a source name from config.yaml")],
    max_pages: Annotated[Optional[int], typer.Option(min=1, help="stop after this many fetches")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Crawl SOURCE: list pages, then the articles they link to, into the warehouse."""
    cfg = _load(config)
    _require_source(cfg, source)
    _prefect_env(verbose)
    from flows.crawl import crawl as crawl_flow

    summary = _run_flow(lambda: crawl_flow(source=source, max_pages=max_pages, config_path=str(config)),
                        quiet=quiet, label=f"crawling {source}")
    _print_summary(summary, f"crawl {source}")


@app.command()
def backfill(
    source: Annotated[str, typer.Argument(help="a source name from config.yaml")],
    url: Annotated[Optional[list[str]], typer.Option("--url", help="an article URL (repeatable)")] = None,
    urls_file: Annotated[Optional[Path], typer.Option(help="a file with one URL per line", exists=True, dir_okay=False)] = None,
    list_page: Annotated[Optional[list[str]], typer.Option("--list-page", help="a list page to walk (repeatable)")] = None,
    since: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="keep articles published on or after")] = None,
    until: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="keep articles published before")] = None,
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
    _prefect_env(verbose)
    from flows.crawl import backfill as backfill_flow

    summary = _run_flow(
        lambda: backfill_flow(
            source=source, urls=url, urls_file=str(urls_file) if urls_file else None, list_pages=list_page,
            since=since.date() if since else None, until=until.date() if until else None, config_path=str(config),
        ),
        quiet=quiet, label=f"backfilling {source}",
    )
    _print_summary(summary, f"backfill {source}")


@app.command()
def reextract(
    source: Annotated[Optional[str], typer.Argument(help="one source (default: all)")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="redo every stored page, not only stale ones")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Re-clean stored pages with the current extractor and rules (no network)."""
    cfg = _load(config)
    _require_source(cfg, source)
    _prefect_env(verbose)
    from flows.crawl import reextract as reextract_flow

    totals = _run_flow(lambda: reextract_flow(source=source, only_stale=not all_pages, config_path=str(config)),
                       quiet=quiet, label="re-extracting")
    for name, summary in totals.items():
        _print_summary(summary, f"reextract {name}")


@app.command()
def demo(
    port: Annotated[Optional[int], typer.Option(help="port of the demo site (default: from the demo source's start URL)")] = None,
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
    start = urlsplit(cfg.sources["demo"].start_urls[0])
    if start.hostname not in ("127.0.0.1", "localhost"):
        err.print(f"{config}: sources.demo.start_urls: the demo site is served on 127.0.0.1, not {start.hostname}")
        raise typer.Exit(2)
    port = port or start.port or 80
    if port != (start.port or 80):
        err.print(f"--port {port} differs from sources.demo.start_urls ({start.port}); edit the config instead")
        raise typer.Exit(2)
    _prefect_env()
    try:
        server = DemoServer(DemoSite(articles), port=port)
    except OSError as exc:
        err.print(f"cannot serve the demo site on 127.0.0.1:{port}: {exc}")
        raise typer.Exit(1) from None
    from flows.crawl import crawl as crawl_flow

    with server:
        console.print(f"demo aggregator: {server.base_url}/list/1.html ({articles} articles)")
        summary = _run_flow(lambda: crawl_flow(source="demo", config_path=str(config)), quiet=quiet,
                            label="crawling the demo site")
    _print_summary(summary, "demo crawl")
    console.print(f"warehouse: {cfg.warehouse.path}\n")
    examples = [
        "SELECT source_id, count(*) AS articles, count(dup_of) AS duplicates FROM articles GROUP BY source_id",
        "SELECT title, account, published_at, copies FROM v_articles ORDER BY copies DESC, published_at DESC NULLS LAST LIMIT 5",
    ]
    for sql_text in examples:
        console.print(f"[bold]$ sieve sql \"{sql_text}\"[/bold]", highlight=False)
        _print_query(cfg, sql_text, OutputFormat.table)



@app.command()
def serve(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Serve one Prefect deployment per source on its cron schedule (starts a local Prefect server if none)."""
    cfg = _load(config)
    _prefect_env(verbose=True)   # served runs send their INFO logs to the UI
    from flows.serve import serve_deployments

    raise typer.Exit(serve_deployments(cfg, config_path=config, console=console))

