"""`sieve serve`: one Prefect deployment per source on its cron, plus on-demand backfill and reextract.

Deployments (flow/deployment):

- `crawl/<source>` for every source, with the source's `schedule` from config.yaml as its cron (UTC)
  when it has one, and parameters `source` and `config_path` (absolute, so runs do not depend on the
  runner's working directory). Sources without a schedule still get a deployment, to run by hand.
- `backfill/on-demand` and `reextract/on-demand`, without schedules: started from the UI or with
  `prefect deployment run 'reextract/on-demand' -p source=demo`; `config_path` is preset.

Scheduling needs a real Prefect server. With `PREFECT_API_URL` set (environment or Prefect profile)
the deployments go to that server. Without it, `sieve serve` starts `prefect server start` on
127.0.0.1 (a free port, database under `<warehouse folder>/prefect`), waits for it, prints the UI
address and stops it on exit. Runs execute as child processes of this one (Prefect's Runner),
one at a time by default: every run writes the same DuckDB file, and DuckDB has one writer.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.prefect_env import (LocalPrefectServer, PrefectServerError, apply_quiet_defaults, remove_server_file,
                               server_home, write_server_file)

if TYPE_CHECKING:
    from rich.console import Console

    from flows.config import Config
    from prefect.deployments.runner import RunnerDeployment

ON_DEMAND = "on-demand"
SCHEDULE_TIMEZONE = "UTC"   # config.yaml crons are read in UTC, as Prefect's own default
TAGS = ["sieve"]


def build_deployments(cfg: "Config", config_path: Path) -> list["RunnerDeployment"]:
    """The deployments `sieve serve` registers: crawl per source, backfill and reextract on demand."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from flows.crawl import backfill, crawl, reextract

    config_path = Path(config_path).resolve()
    common: dict[str, Any] = {"entrypoint_type": EntrypointType.MODULE_PATH, "concurrency_limit": 1}
    deployments = []
    for name, source in cfg.sources.items():
        deployments.append(
            crawl.to_deployment(
                name=name,
                schedules=[Cron(source.schedule, timezone=SCHEDULE_TIMEZONE)] if source.schedule else [],
                parameters={"source": name, "config_path": str(config_path)},
                description=f"Crawl {name} ({source.start_urls[0]}) into {cfg.warehouse.path}",
                tags=[*TAGS, "crawl", f"source:{name}"],
                **common,
            )
        )
    for flow, what in ((backfill, "Fetch given URLs or list pages now"),
                       (reextract, "Re-clean stored pages with the current rules (no network)")):
        deployments.append(
            flow.to_deployment(
                name=ON_DEMAND,
                parameters={"config_path": str(config_path)},
                description=f"{what}; config {config_path}",
                tags=[*TAGS, flow.name],
                **common,
            )
        )
    return deployments


def deploy_to_work_pool(
    cfg: "Config", *, config_path: Path, work_pool: str, worker_config_path: str | None = None,
) -> list[str]:
    """Register the same deployments in a work pool, for `prefect worker start --pool NAME` on other machines.

    Needs `PREFECT_API_URL` (a shared server) and a work pool (`prefect work-pool create NAME --type
    process`). Workers import `flows.crawl` (module entrypoints: no image, no code storage), so sieve
    must be installed on each worker, and `worker_config_path` (default: this config's absolute
    path) must exist there. Returns the deployment ids.
    """
    from prefect import deploy

    deployments = build_deployments(cfg, config_path)
    if worker_config_path:
        for deployment in deployments:
            deployment.parameters["config_path"] = worker_config_path
    ids = deploy(*deployments, work_pool_name=work_pool, build=False, push=False,
                 print_next_steps_message=False, ignore_warnings=True)
    return [str(i) for i in ids]


def configured_api_url() -> str | None:
    """The Prefect API the user chose (environment first, then the active Prefect profile), if any."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def serve_deployments(
    cfg: "Config",
    *,
    config_path: Path,
    console: "Console",
    limit: int = 1,
    server_ui: bool | None = None,
    startup_timeout: float = 120.0,
) -> int:
    """Serve the deployments until Ctrl-C or SIGTERM; returns the exit code (0 clean stop, 1 failure)."""
    apply_quiet_defaults(logging_level="INFO")
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)   # until the Runner installs its own
    server: LocalPrefectServer | None = None
    previous_api_url = os.environ.get("PREFECT_API_URL")
    try:
        api_url = configured_api_url()
        if api_url:
            console.print(f"Prefect API: {api_url}", highlight=False)
            if not _healthy(api_url):
                console.print(f"[red]the Prefect API at {api_url} does not answer[/red] (PREFECT_API_URL); "
                              "start that server, or unset PREFECT_API_URL to let sieve serve start one", highlight=False)
                return 1
        else:
            server = LocalPrefectServer(server_home(cfg.warehouse.path), ui=server_ui, startup_timeout=startup_timeout)
            console.print(f"starting a Prefect server on {server.url} (database under {server.home}) ...", highlight=False)
            api_url = server.start()
            console.print(f"Prefect UI: {server.url}  (ready in {server.startup_seconds} s)", highlight=False)
        os.environ["PREFECT_API_URL"] = api_url   # flow runs are child processes: they inherit it
        write_server_file(cfg.warehouse.path, api_url)   # CLI runs on this warehouse report here too
        return _serve(cfg, Path(config_path), api_url, limit, console)
    except PrefectServerError as exc:
        console.print(f"[red]cannot start a Prefect server[/red]: {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        remove_server_file(cfg.warehouse.path)
        if server is not None:
            console.print("stopping the Prefect server ...", highlight=False)
            server.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)
        if previous_api_url is None:
            os.environ.pop("PREFECT_API_URL", None)


def _serve(cfg: "Config", config_path: Path, api_url: str, limit: int, console: "Console") -> int:
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):   # in case Prefect was imported earlier
        deployments = build_deployments(cfg, config_path)
        scheduled = [f"{d.flow_name}/{d.name} ({s.schedule.cron} UTC)" for d in deployments for s in (d.schedules or [])]
        console.print(f"serving {len(deployments)} deployments; scheduled: {', '.join(scheduled) or 'none'}",
                      highlight=False)
        serve(*deployments, limit=limit, print_starting_message=True)
    return 0


def _healthy(api_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=10.0).status_code == 200
    except httpx.HTTPError:
        return False


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """`python -m flows.serve --work-pool NAME [--config FILE] [--worker-config PATH]`: register in a pool."""
    import argparse

    from flows.config import ConfigError, load_config

    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=main.__doc__)
    parser.add_argument("--work-pool", required=True, help="an existing Prefect work pool (type process)")
    parser.add_argument("--config", default="config.yaml", type=Path)
    parser.add_argument("--worker-config", default=None, help="config.yaml's path on the worker machines")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc)
        return 2
    if not configured_api_url():
        print("set PREFECT_API_URL to the shared Prefect server first (a temporary server cannot hold deployments)")
        return 2
    ids = deploy_to_work_pool(cfg, config_path=args.config, work_pool=args.work_pool,
                              worker_config_path=args.worker_config)
    print(f"{len(ids)} deployments in work pool {args.work_pool!r}; start workers with "
          f"`prefect worker start --pool {args.work_pool}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
