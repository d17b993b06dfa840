"""The `sieve` command line.

Exit codes: 0 the run completed (failed pages are rows, counted in the summary); 1 the run itself
failed; 2 bad usage or bad config. Commands that run no flow (extract, sql, stats, eval, export,
--help) never import Prefect, so they start fast; flow modules are imported inside the commands.
"""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    from flows.config import Config

app = typer.Typer(
    name="sieve",
    help="Scrape content aggregators and keep only the article: fetch, clean, store in DuckDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rules_app = typer.Typer(help="Learn and manage per-source cleaning rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

# Piped output gets wide tables rather than rich's 80-column default.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="config file", show_default=True)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect's run logs")]
DEFAULT_CONFIG = Path("config.yaml")


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class ExportFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


def _load(config_path: Path) -> "Config":
    from flows.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        err.print(f"[red]config error[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _require_source(cfg: "Config", source: str | None) -> None:
    """Exit 2 (bad usage) for a source the config does not name; None means "all sources"."""
    if source is not None and source not in cfg.sources:
        err.print(f"unknown source {source!r}; configured: {', '.join(cfg.sources)}")
        raise typer.Exit(2)


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

    from flows.demo_site import DemoServer, DemoSite

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


# ---- no flows below: keep Prefect out ------------------------------------------------------------
@app.command()
def extract(
    inputs: Annotated[list[str], typer.Argument(metavar="PATH_OR_URL...", help="HTML files or http(s) URLs")],
    source: Annotated[Optional[str], typer.Option(help="apply this source's rules (default: global rules only)")] = None,
    url: Annotated[Optional[str], typer.Option(help="the page URL for a file input (resolves links, metadata)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per input, one per line")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Clean pages and print the article: title and text, or JSON lines."""
    from crawler import decode_html
    from extractors import Article, Rules, extract as extract_article

    rules = Rules()
    if source is not None:
        cfg = _load(config)
        _require_source(cfg, source)
        rules = cfg.sources[source].rules
    if url is not None and len(inputs) > 1:
        err.print("--url names the page of a single input; give one PATH with it")
        raise typer.Exit(2)
    fetched = _fetch_inputs([i for i in inputs if i.startswith(("http://", "https://"))], config if source else None)
    out = sys.stdout
    for item in inputs:
        record: dict[str, Any]
        page_url = url or item
        if item in fetched:
            result = fetched[item]
            if not result.ok or result.text is None:
                record = {"url": item, "error": result.error or f"http_{result.status}", "detail": result.detail}
                _emit(out, record, as_json)
                continue
            html, page_url, fetched_at = result.text, result.final_url, result.fetched_at
        else:
            path = Path(item)
            try:
                body = path.read_bytes()
            except OSError as exc:
                _emit(out, {"url": page_url, "path": item, "error": "unreadable", "detail": str(exc)}, as_json)
                continue
            html = decode_html(body, None).text
            if url is None:
                page_url = path.resolve().as_uri()
            fetched_at = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        article = extract_article(html, page_url, rules, fetched_at=fetched_at)
        if isinstance(article, Article):
            record = {
                "url": page_url,
                "title": article.title,
                "author": article.author,
                "account": article.account,
                "published_at": article.published_at.isoformat() if article.published_at else None,
                "text": article.text,
                "content_hash": article.content_hash,
                "flags": list(article.flags),
            }
        else:
            record = {"url": page_url, "error": article.reason, "detail": article.detail}
        if item != page_url and not item.startswith(("http://", "https://")):
            record["path"] = item
        _emit(out, record, as_json)


def _fetch_inputs(urls: list[str], config_path: Path | None) -> dict[str, Any]:
    if not urls:
        return {}
    from crawler import CrawlSettings, Fetcher

    settings = _load(config_path).crawl if config_path else CrawlSettings()

    async def fetch_all() -> dict[str, Any]:
        async with Fetcher(settings, None) as fetcher:
            results = await asyncio.gather(*(fetcher.fetch(u) for u in urls))
        return dict(zip(urls, results))

    return asyncio.run(fetch_all())


def _emit(out: Any, record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        return
    if "error" in record:
        err.print(f"{record.get('path') or record['url']}: no article ({record['error']})", highlight=False)
        return
    console.rule(record.get("title") or "(untitled)")
    meta = [f"{k}: {record[k]}" for k in ("author", "account", "published_at") if record.get(k)]
    if meta:
        console.print("  ".join(meta), style="dim", highlight=False)
    console.print(record["text"], highlight=False, markup=False)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run read-only on the warehouse")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Query the warehouse (read-only). Tables: articles, pages, fetches, frontier, crawl_runs; views v_*."""
    cfg = _load(config)
    _print_query(cfg, query, fmt)


def _print_query(cfg: "Config", query: str, fmt: OutputFormat) -> None:
    from warehouse import Warehouse, WarehouseBusy, WarehouseError

    path = cfg.warehouse.path
    if not Path(path).exists():
        err.print(f"no warehouse at {path}: run `sieve demo` or `sieve crawl SOURCE` first")
        raise typer.Exit(1)
    try:
        result = Warehouse(path).query(query)
    except WarehouseBusy as exc:
        err.print(f"warehouse busy: {exc}")
        raise typer.Exit(1) from None
    except WarehouseError as exc:
        err.print(f"query failed: {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:  # duckdb's own errors: a typo in the SQL is bad usage
        err.print(f"query failed: {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    if fmt is OutputFormat.json:
        rows = [dict(zip(result.columns, row)) for row in result.rows]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, default=str, indent=None) + "\n")
    elif fmt is OutputFormat.csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        from rich.table import Table

        table = Table(*result.columns, show_lines=False)
        for row in result.rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        console.print(f"{len(result.rows)} row(s)", style="dim")


@app.command()
def stats(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Per source: articles, duplicates, pages, fetches, failures, last good crawl."""
    cfg = _load(config)
    from rich.table import Table

    from warehouse import Warehouse

    if not Path(cfg.warehouse.path).exists():
        err.print(f"no warehouse at {cfg.warehouse.path}: run `sieve demo` or `sieve crawl SOURCE` first")
        raise typer.Exit(1)
    result = Warehouse(cfg.warehouse.path).stats()
    table = Table(*result.columns, title="sieve warehouse")
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@app.command()
def export(
    out_dir: Annotated[Path, typer.Argument(help="folder to write into")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.parquet,
    source: Annotated[Optional[str], typer.Option(help="only this source")] = None,
    since: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="articles extracted on or after")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Export articles (Parquet partitioned by source and month, CSV or JSON lines)."""
    cfg = _load(config)
    from warehouse import Warehouse

    if not Path(cfg.warehouse.path).exists():
        err.print(f"no warehouse at {cfg.warehouse.path}: run `sieve demo` or `sieve crawl SOURCE` first")
        raise typer.Exit(1)
    paths = Warehouse(cfg.warehouse.path).export(out_dir, fmt.value, source=source, since=since.date() if since else None)
    console.print(f"wrote {len(paths)} file(s) under {out_dir}")


@app.command(name="eval")
def evaluate(
    golden: Annotated[Optional[list[Path]], typer.Option("--golden", help="golden folder(s); default tests/golden")] = None,
    against: Annotated[str, typer.Option(help="other extractors to score side by side, comma-separated")] = "trafilatura,readability",
    per_page: Annotated[bool, typer.Option("--per-page/--summary", help="show a row per page")] = True,
    source: Annotated[Optional[str], typer.Option(help="apply this source's rules to pages that name none")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Score sieve's extraction against golden text (character P/R/F1, leaked boilerplate, titles, dates).

    Folders are our golden layout (name.html + name.txt + name.json) or the public one (html/ + gold/).
    Add `sieve+learned` to --against to see rules learned from the folder's own pages beside the configured ones.
    """
    default_rules = None
    if source is not None:
        cfg = _load(config)
        _require_source(cfg, source)
        default_rules = cfg.sources[source].rules
    from flows.evaluate import run_eval

    dirs = golden or [Path("tests/golden")]
    missing = [str(d) for d in dirs if not Path(d).is_dir()]
    if missing:
        err.print(f"no such folder: {', '.join(missing)}")
        raise typer.Exit(2)
    others = [name.strip() for name in against.split(",") if name.strip()]
    try:
        run_eval(dirs, others, per_page=per_page, console=console, default_rules=default_rules)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None


@rules_app.command("suggest")
def rules_suggest(
    source: Annotated[str, typer.Argument(help="source name in config.yaml")],
    min_share: Annotated[float, typer.Option("--min-share", min=0.01, max=1.0,
                                             help="share of distinct pages a block or line must recur on")] = 0.3,
    write: Annotated[bool, typer.Option("--write", help="add the rules to config.yaml (shows the diff first)")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="write without asking")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Learn SOURCE's boilerplate from its stored pages: blocks and lines recurring on many pages."""
    cfg = _load(config)
    from flows.rules_cmd import suggest_command

    raise typer.Exit(suggest_command(cfg, config, source, min_share=min_share, write=write, yes=yes, console=console))


@app.command()
def serve(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Serve one Prefect deployment per source on its cron schedule (starts a local Prefect server if none)."""
    cfg = _load(config)
    _prefect_env(verbose=True)   # served runs send their INFO logs to the UI
    from flows.serve import serve_deployments

    raise typer.Exit(serve_deployments(cfg, config_path=config, console=console))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
