"""Commands about cleaning pages: extract, eval, rules suggest. No Prefect here."""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from flows.cli.common import DEFAULT_CONFIG, ConfigOption, _load, _require_source, app, console, err, rules_app


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


