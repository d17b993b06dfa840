"""`sieve sources`: the configured sources, their hosts and schedule, last crawl and health. No Prefect here.

Reads config.yaml, and the warehouse when there is one (read-only, never created or migrated): the
last `crawl` or `backfill` run per source (reextract touches no network, so it says nothing about
a site's health) and the fetches of that run. Health is one verdict with its reason:

    never crawled        no crawl or backfill run in the warehouse
    running              the last run has not finished (or its process died: the next run takes over)
    last run failed      the run itself failed (its error follows)
    failing              every fetch of the last run failed (the commonest error kind follows)
    degraded             more than DEGRADED_SHARE of its fetches failed
    ok                   otherwise (failed fetches, if any, are counted)
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import ConfigOption, OutputFormat, _load, app, console, err
from flows.config import DEFAULT_CONFIG

if TYPE_CHECKING:
    from flows.config import Config

DEGRADED_SHARE = 0.2

# The last network run (crawl or backfill) per source and its fetches: (source_id, kind, status, error,
# started_at, finished_at, fetches, failed, commonest error kind).
LAST_RUNS_SQL = """
WITH last AS (
    SELECT source_id, arg_max(run_id, started_at) AS run_id
    FROM crawl_runs WHERE kind IN ('crawl', 'backfill') AND source_id IS NOT NULL GROUP BY source_id
), f AS (
    SELECT run_id, count(*) AS fetches, count(*) FILTER (WHERE error IS NOT NULL) AS failed,
           mode(error) FILTER (WHERE error IS NOT NULL) AS top_error
    FROM fetches WHERE run_id IN (SELECT run_id FROM last) GROUP BY run_id
)
SELECT last.source_id, r.kind, r.status, r.error, r.started_at, r.finished_at,
       coalesce(f.fetches, 0), coalesce(f.failed, 0), f.top_error
FROM last JOIN crawl_runs r USING (run_id) LEFT JOIN f USING (run_id)
"""
ARTICLES_SQL = "SELECT source_id, count(*) FILTER (WHERE dup_of IS NULL) FROM articles GROUP BY source_id"


@dataclass(frozen=True)
class SourceStatus:
    source: str
    hosts: str
    schedule: str
    last_crawl: str | None
    articles: int | None
    health: str


@app.command()
def sources(
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """The configured sources: hosts, schedule, last crawl, articles and health, one row each.

    Works without a warehouse (then every source is "never crawled"); never writes to one.
    """
    cfg = _load(config)
    runs, articles, note = _read_warehouse(cfg)
    rows = [_status(name, cfg, runs.get(name), articles) for name in cfg.sources]
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps([asdict(r) for r in rows], ensure_ascii=False) + "\n")
    elif fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(list(asdict(rows[0])))
        writer.writerows([list(asdict(r).values()) for r in rows])
    else:
        from rich.table import Table

        table = Table("source", "hosts", "schedule", "last crawl", "articles", "health", title="sieve sources")
        for r in rows:
            table.add_row(
                r.source,
                r.hosts,
                r.schedule,
                r.last_crawl or "-",
                "-" if r.articles is None else str(r.articles),
                r.health,
            )
        console.print(table)
    if note:
        err.print(note, highlight=False, markup=False)


def _read_warehouse(cfg: Config) -> tuple[dict[str, tuple[Any, ...]], dict[str, int], str | None]:
    """(last network run per source, distinct articles per source, a note for stderr)."""
    from warehouse import Warehouse, WarehouseBusy, WarehouseError, WarehouseMissing

    path = Path(cfg.warehouse.path)
    warehouse = Warehouse(path)
    try:
        runs = {row[0]: tuple(row) for row in warehouse.query(LAST_RUNS_SQL).rows}
        articles = {row[0]: int(row[1]) for row in warehouse.query(ARTICLES_SQL).rows}
    except WarehouseMissing:
        return {}, {}, f"no warehouse at {path} yet: every source shows as never crawled"
    except WarehouseBusy as exc:
        return {}, {}, f"warehouse busy, last crawls not shown: {exc}"
    except WarehouseError as exc:  # e.g. a file from an older sieve, not yet migrated by a crawl
        return {}, {}, f"cannot read the warehouse at {path}, last crawls not shown: {exc}"
    return runs, articles, None


def _status(name: str, cfg: Config, run: tuple[Any, ...] | None, articles: dict[str, int]) -> SourceStatus:
    source = cfg.sources[name]
    schedule = f"{source.schedule} (UTC)" if source.schedule else "none (on demand)"
    base = {"source": name, "hosts": ", ".join(source.allowed_hosts), "schedule": schedule}
    if run is None:
        return SourceStatus(**base, last_crawl=None, articles=articles.get(name), health="never crawled")
    _, kind, status, error, started_at, finished_at, fetches, failed, top_error = run
    when = _utc(finished_at or started_at)
    last_crawl = f"{when} ({kind})" if kind != "crawl" else when
    return SourceStatus(
        **base,
        last_crawl=last_crawl,
        articles=articles.get(name, 0),
        health=_verdict(status, error, int(fetches), int(failed), top_error),
    )


def _verdict(status: str, error: str | None, fetches: int, failed: int, top_error: str | None) -> str:
    if status == "running":
        return "running (or its process died)"
    if status == "failed":
        return f"last run failed: {(error or 'no error recorded').splitlines()[0][:120]}"
    if status != "completed":
        return f"last run {status}"
    if fetches == 0:
        return "ok (nothing was due)"
    if failed == fetches:
        return f"failing: all {fetches} fetches failed ({top_error})"
    if failed > DEGRADED_SHARE * fetches:
        return f"degraded: {failed} of {fetches} fetches failed (mostly {top_error})"
    return f"ok, {failed} of {fetches} fetches failed ({top_error})" if failed else f"ok ({fetches} fetches)"


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
