"""Commands about cleaning pages: extract, eval, rules suggest. No Prefect here."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import ConfigOption, _load, _require_source, app, console, err, rules_app
from flows.config import DEFAULT_CONFIG

EXTRACT_HELP = """Clean pages and print the article: title and text, or JSON lines.

Files are read up to crawl.max_bytes; only regular files (a FIFO or a device is refused). A
binary file, an empty one, a missing one, a 404 or an unreachable host is reported with its
reason, in text mode too. Exit code: 0 when every input gave an article, 1 when any did not,
2 bad usage or config. --explain prints the pipeline's decisions for each page: the decoding,
the candidate blocks and their scores, the choice and why, and every removed block or line
with the rule that removed it."""


@app.command(help=EXTRACT_HELP)
def extract(
    inputs: Annotated[list[str], typer.Argument(metavar="PATH_OR_URL...", help="HTML files or http(s) URLs")],
    source: Annotated[str | None, typer.Option(help="apply this source's rules (default: global rules only)")] = None,
    url: Annotated[str | None, typer.Option(help="the page URL for a file input (resolves links, metadata)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per input, one per line")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="print the pipeline's decisions for each page")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    from crawler import CrawlSettings
    from extractors import Article, Rules, extract as extract_article
    from extractors.trace import Trace

    rules, settings = Rules(), CrawlSettings()
    if source is not None or config.exists():
        cfg = _load(config)
        _require_source(cfg, source)
        if source is not None:
            rules, settings = cfg.sources[source].rules, cfg.crawl_settings(source)
        else:
            settings = cfg.crawl
    if url is not None and len(inputs) > 1:
        err.print("--url names the page of a single input; give one PATH with it")
        raise typer.Exit(2)
    fetched = _fetch_inputs([i for i in inputs if i.startswith(("http://", "https://"))], settings)
    out = sys.stdout
    failed = 0
    for item in inputs:
        page = _read_input(item, url, fetched, settings.max_bytes)
        if "error" in page:
            failed += 1
            _emit(out, page, as_json)
            continue
        trace = Trace(decoding=page.pop("decoding")) if explain else None
        article = extract_article(page.pop("html"), page["url"], rules, fetched_at=page.pop("fetched_at"), trace=trace)
        if isinstance(article, Article):
            record = {
                **page,
                "title": article.title,
                "author": article.author,
                "account": article.account,
                "published_at": article.published_at.isoformat() if article.published_at else None,
                "text": article.text,
                "content_hash": article.content_hash,
                "flags": list(article.flags),
            }
        else:
            failed += 1
            record = {**page, "error": article.reason, "detail": article.detail}
        if trace is not None:
            record["explain"] = trace
        _emit(out, record, as_json)
    raise typer.Exit(1 if failed else 0)


def _read_input(item: str, url: str | None, fetched: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """A page to extract ({"url", "html", "fetched_at", "decoding"}) or why there is none
    ({"url", "error", "detail"}; kinds from outcomes, plus "unreadable" for local files)."""
    from crawler.decode import decode_html, looks_binary

    if item in fetched:
        result = fetched[item]
        if not result.ok or result.body is None:
            status = f" (HTTP {result.status})" if result.status else ""
            return {
                "url": item,
                "error": result.error or f"http_{result.status}",
                "detail": (result.detail or "") + status,
            }
        body, page_url, fetched_at, content_type = result.body, result.final_url, result.fetched_at, result.content_type
        record: dict[str, Any] = {"url": page_url}
    else:
        path = Path(item)
        record = {"url": url or item, "path": item}
        body_or_error = _read_file(path, max_bytes)
        if isinstance(body_or_error, tuple):
            return {**record, "error": body_or_error[0], "detail": body_or_error[1]}
        body, content_type = body_or_error, None
        page_url = url or path.resolve().as_uri()
        fetched_at = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        record["url"] = page_url
    if looks_binary(body):
        return {**record, "error": "not_html", "detail": "binary content (NUL bytes), not an HTML document"}
    decoded = decode_html(body, content_type)
    if decoded.undecodable:
        return {**record, "error": "undecodable", "detail": decoded.undecodable}
    decoding = f"{decoded.encoding} ({decoded.how}" + ("; replacement characters" if decoded.replaced else "") + ")"
    return {**record, "html": decoded.text, "fetched_at": fetched_at, "decoding": decoding}


def _read_file(path: Path, max_bytes: int) -> bytes | tuple[str, str]:
    """The file's bytes, or (kind, detail). Only regular files, and never more than max_bytes
    (a symlink to /dev/zero would otherwise be read for ever, a FIFO would block)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "unreadable", f"{path}: no such file"
    except OSError as exc:
        return "unreadable", f"{path}: {exc.strerror or exc}"
    if stat.S_ISDIR(info.st_mode):
        return "unreadable", f"{path}: is a directory"
    if not stat.S_ISREG(info.st_mode):
        return "unreadable", f"{path}: not a regular file (a device, FIFO or socket)"
    try:
        with open(path, "rb") as handle:
            body = handle.read(max_bytes + 1)
    except OSError as exc:
        return "unreadable", f"{path}: {exc.strerror or exc}"
    if len(body) > max_bytes:
        return "too_large", f"{path}: larger than crawl.max_bytes ({max_bytes:,} bytes)"
    if not body.strip():
        return "empty", f"{path}: empty file"
    return body


def _fetch_inputs(urls: list[str], settings: Any) -> dict[str, Any]:
    if not urls:
        return {}
    from crawler import Fetcher

    async def fetch_all() -> dict[str, Any]:
        async with Fetcher(settings, None) as fetcher:
            results = await asyncio.gather(*(fetcher.fetch(u) for u in urls))
        return dict(zip(urls, results, strict=True))

    return asyncio.run(fetch_all())


def _emit(out: Any, record: dict[str, Any], as_json: bool) -> None:
    trace = record.pop("explain", None)
    if as_json:
        if trace is not None:
            from flows.explain import trace_record

            record["explain"] = trace_record(trace)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        return
    name = record.get("path") or record["url"]
    if "error" in record:
        detail = f": {record['detail']}" if record.get("detail") else ""
        err.print(f"{name}: no article ({record['error']}{detail})", highlight=False, markup=False, soft_wrap=True)
    else:
        console.rule(record.get("title") or "(untitled)")
        meta = [f"{k}: {record[k]}" for k in ("author", "account", "published_at") if record.get(k)]
        if meta:
            console.print("  ".join(meta), style="dim", highlight=False)
        # soft_wrap: each paragraph stays one line (rich would break long ones at spaces, even into a file)
        console.print(record["text"], highlight=False, markup=False, soft_wrap=True)
    if trace is not None:
        from flows.explain import render_trace

        console.rule(f"why: {name}", style="dim")
        render_trace(trace, console)


@app.command(name="eval")
def evaluate(
    golden: Annotated[
        list[Path] | None, typer.Option("--golden", help="golden folder(s); default tests/golden")
    ] = None,
    against: Annotated[
        str, typer.Option(help="other extractors to score side by side, comma-separated")
    ] = "trafilatura,readability",
    per_page: Annotated[bool, typer.Option("--per-page/--summary", help="show a row per page")] = True,
    worst: Annotated[int, typer.Option(help="list this many worst pages per set, with their cause (0: none)")] = 8,
    workers: Annotated[int, typer.Option(min=1, max=64, help="score pages in this many processes")] = 1,
    source: Annotated[str | None, typer.Option(help="apply this source's rules to pages that name none")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Score sieve's extraction against golden text (character P/R/F1, leaked boilerplate, titles, dates).

    Folders are our golden layout (name.html + name.txt + name.json) or the public one (html/ + gold/).
    Pages are decoded by the crawler's decoder. With --against, a "best of" row gives the mean of the
    best extractor per page (the oracle), and the worst pages are listed with the cause that can be
    told: decode, rejected, wrong block, tail overrun, head chrome, extra inside, lost text.
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
        run_eval(
            dirs, others, per_page=per_page, console=console, default_rules=default_rules, worst=worst, workers=workers
        )
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None


@rules_app.command("suggest")
def rules_suggest(
    source: Annotated[str, typer.Argument(help="source name in config.yaml")],
    min_share: Annotated[
        float,
        typer.Option("--min-share", min=0.01, max=1.0, help="share of distinct pages a block or line must recur on"),
    ] = 0.3,
    write: Annotated[bool, typer.Option("--write", help="add the rules to config.yaml (shows the diff first)")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="write without asking")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Learn SOURCE's boilerplate from its stored pages: blocks and lines recurring on many pages."""
    cfg = _load(config)
    from flows.rules_cmd import suggest_command

    raise typer.Exit(suggest_command(cfg, config, source, min_share=min_share, write=write, yes=yes, console=console))
