"""`sieve fleet ...`: crawl beyond one machine (docs/orchestration.md, "Several machines").

    sieve fleet deploy              register the claim deployment in the work pool (once, and after upgrades)
    sieve fleet crawl SOURCE        dispatch: claim due URLs host by host, start a worker run per claim, load shards
    sieve fleet load                apply the shards that landed (one transaction each); no Prefect
    sieve fleet status              open claims and shards waiting; no Prefect

The workers are Prefect's own: `prefect worker start --pool <fleet.work_pool>` on each machine that has
sieve installed and PREFECT_API_URL set. `sieve crawl` never uses any of this.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from flows.cli.common import (
    ConfigOption,
    QuietOption,
    VerboseOption,
    _load,
    _require_source,
    app,
    console,
    err,
)
from flows.config import DEFAULT_CONFIG

fleet_app = typer.Typer(
    help="Crawl beyond one machine: a dispatcher, workers on a Prefect work pool, shards, a loader.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(fleet_app, name="fleet")

ShardsOption = Annotated[str | None, typer.Option("--shards", help="shards location (default: fleet.shards)")]


def _shared_server(cfg: Any) -> str:
    """The Prefect API the workers share; exit 2 without one (a temporary server dies with this command)."""
    from flows.prefect_env import profile_api_url, served_api_url

    url = os.environ.get("PREFECT_API_URL") or profile_api_url(os.environ) or served_api_url(cfg.warehouse.path)
    if not url:
        err.print(
            "the fleet needs a Prefect server its workers can reach: start one (`prefect server start`, or "
            "`sieve serve`) and set PREFECT_API_URL; see docs/orchestration.md",
            highlight=False,
        )
        raise typer.Exit(2)
    return url


@fleet_app.command("deploy")
def deploy(
    pool: Annotated[str | None, typer.Option(help="work pool (default: fleet.work_pool); created if missing")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Register `crawl-claim/fleet` in the work pool: what `fleet crawl` starts once per claim."""
    cfg = _load(config)
    api_url = _shared_server(cfg)
    os.environ.setdefault("PREFECT_API_URL", api_url)
    from flows.prefect_env import apply_quiet_defaults

    apply_quiet_defaults()
    from flows.fleet import CLAIM_DEPLOYMENT, deploy_claims

    name = pool or cfg.fleet.work_pool
    deployment_id = deploy_claims(name)
    console.print(
        f"{CLAIM_DEPLOYMENT} ({deployment_id}) in work pool {name!r} on {api_url}\n"
        f"start workers where the crawling should happen (sieve installed, shards reachable):\n"
        f"  PREFECT_API_URL={api_url} prefect worker start --pool {name}",
        highlight=False,
        soft_wrap=True,
    )


@fleet_app.command("crawl")
def crawl(
    source: Annotated[str, typer.Argument(help="a source name from config.yaml")],
    config: ConfigOption = DEFAULT_CONFIG,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Crawl SOURCE through the fleet, until nothing is due and no claim is out; prints the summary."""
    cfg = _load(config)
    _require_source(cfg, source)
    os.environ.setdefault("PREFECT_API_URL", _shared_server(cfg))
    from flows.cli.runner import prepare_prefect, print_summary, run_flow

    def start() -> Any:
        from flows.fleet import dispatch

        return dispatch(source=source, config_path=str(config))

    prefect = prepare_prefect(cfg.warehouse.path, verbose=verbose)
    for summary in run_flow(start, prefect, quiet=quiet, label=f"fleet crawl of {source}"):
        print_summary(summary, f"fleet crawl {source}")


@fleet_app.command("load")
def load(config: ConfigOption = DEFAULT_CONFIG, shards: ShardsOption = None) -> None:
    """Apply the complete shards that landed, one transaction each; delete stale incomplete ones."""
    cfg = _load(config)
    from pipeline.dispatch import load_pass
    from warehouse.shards import ShardStore

    result = load_pass(
        cfg.warehouse.path,
        ShardStore(shards or cfg.fleet.shards),
        clean_after=timedelta(seconds=cfg.fleet.clean_after_seconds),
    )
    for shard_id, why in result.pop("rejected_shards").items():
        err.print(f"refused {shard_id}: {why}", highlight=False)
    console.print(" · ".join(f"{k} {v}" for k, v in result.items()), highlight=False)


@fleet_app.command("status")
def status(config: ConfigOption = DEFAULT_CONFIG, shards: ShardsOption = None) -> None:
    """Open claims (hosts, URLs, lease, worker) and shards waiting to be loaded."""
    from rich.table import Table

    from warehouse import Warehouse
    from warehouse.shards import ShardStore

    cfg = _load(config)
    store = ShardStore(shards or cfg.fleet.shards)
    now = datetime.now(UTC)
    claims = Warehouse(cfg.warehouse.path).claims() if cfg.warehouse.path.exists() else []
    table = Table(title=f"open claims ({len(claims)})")
    for column in ("claim", "source", "hosts", "lease ends in", "worker"):
        table.add_column(column)
    for c in claims:
        left = (c.lease_until - now).total_seconds()
        table.add_row(
            c.claim_id, c.source_id, ", ".join(c.hosts), f"{left:.0f} s" if left > 0 else "ended", c.worker or ""
        )
    console.print(table)
    waiting = store.complete(quarantine=False)
    stale = store.incomplete(older_than=timedelta(0))
    console.print(
        f"shards under {store.root}: {len(waiting)} complete parts waiting for the loader, "
        f"{len(stale)} without a manifest (being written, or left by a worker that died)",
        highlight=False,
    )
