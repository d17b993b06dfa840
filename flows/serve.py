"""`sieve serve`: one Prefect deployment per source on its cron, plus on-demand backfill and reextract.

Deployments (flow/deployment):

- `crawl/<source>` for every source, with the source's `schedule` from config.yaml as its cron (UTC)
  when it has one, and parameters `source` and `config_path` (absolute, so runs do not depend on the
  runner's working directory). Sources without a schedule still get a deployment, to run by hand.
- `backfill/on-demand` and `reextract/on-demand`, without schedules: started from the UI or with
  `prefect deployment run 'reextract/on-demand' -p source=demo`; `config_path` is preset.

Scheduling needs a real Prefect server. With `PREFECT_API_URL` set (environment or Prefect profile)
the deployments go to that server. Without it, `sieve serve` starts `prefect server start` on
127.0.0.1 (a free port, database under `<warehouse folder>/prefect`), with its UI pointed at that
same server (`PREFECT_UI_API_URL`: Prefect's default is port 4200, so the UI of a server on any
other port shows nothing, or another server's data), waits for it, prints the UI address and stops
it on exit. Runs execute as child processes of this one (Prefect's Runner), one at a time by
default: every run writes the same DuckDB file, and DuckDB has one writer.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flows.prefect_env import (
    LocalPrefectServer,
    PrefectServerError,
    apply_quiet_defaults,
    remove_server_file,
    server_home,
    write_server_file,
)

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.deployments.runner import RunnerDeployment
    from rich.console import Console

    from flows.config import Config

ON_DEMAND = "on-demand"
SCHEDULE_TIMEZONE = "UTC"  # config.yaml crons are read in UTC, as Prefect's own default
TAGS = ["sieve"]


def build_deployments(cfg: Config, config_path: Path) -> list[RunnerDeployment]:
    """The deployments `sieve serve` registers: crawl per source, backfill and reextract on demand."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from flows.crawl import backfill, crawl, reextract

    config_path = Path(config_path).resolve()
    common: dict[str, Any] = {"entrypoint_type": EntrypointType.MODULE_PATH, "concurrency_limit": 1}
    # to_deployment and deploy are Prefect's async_dispatch: called from sync code, as here, they return
    # the value; their declared type is value | coroutine, hence the casts
    deployments: list[RunnerDeployment] = []
    for name, source in cfg.sources.items():
        deployments.append(
            cast(
                "RunnerDeployment",
                crawl.to_deployment(
                    name=name,
                    schedules=[Cron(source.schedule, timezone=SCHEDULE_TIMEZONE)] if source.schedule else [],
                    parameters={"source": name, "config_path": str(config_path)},
                    description=f"Crawl {name} ({source.start_urls[0]}) into {cfg.warehouse.path}",
                    tags=[*TAGS, "crawl", f"source:{name}"],
                    **common,
                ),
            )
        )
    for flow, what in (
        (backfill, "Fetch given URLs or list pages now"),
        (reextract, "Re-clean stored pages with the current rules (no network)"),
    ):
        deployments.append(
            cast(
                "RunnerDeployment",
                flow.to_deployment(
                    name=ON_DEMAND,
                    parameters={"config_path": str(config_path)},
                    description=f"{what}; config {config_path}",
                    tags=[*TAGS, flow.name],
                    **common,
                ),
            )
        )
    return deployments


def deploy_to_work_pool(
    cfg: Config,
    *,
    config_path: Path,
    work_pool: str,
    worker_config_path: str | None = None,
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
    ids = cast(
        "list[UUID]",
        deploy(  # async_dispatch: a list from sync code
            *deployments,
            work_pool_name=work_pool,
            build=False,
            push=False,
            print_next_steps_message=False,
            ignore_warnings=True,
        ),
    )
    return [str(i) for i in ids]


def configured_api_url() -> str | None:
    """The Prefect API the user chose (environment first, then the active Prefect profile), if any."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def serve_deployments(
    cfg: Config,
    *,
    config_path: Path,
    console: Console,
    limit: int = 1,
    server_ui: bool | None = None,
    startup_timeout: float = 120.0,
) -> int:
    """Serve the deployments until Ctrl-C or SIGTERM; returns the exit code (0 clean stop, 1 failure)."""
    apply_quiet_defaults(logging_level="INFO")
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # until the Runner installs its own
    server: LocalPrefectServer | None = None
    previous_api_url = os.environ.get("PREFECT_API_URL")
    try:
        api_url = configured_api_url()
        if api_url:
            console.print(f"Prefect API: {api_url}", highlight=False)
            if not _healthy(api_url):
                console.print(
                    f"[red]the Prefect API at {api_url} does not answer[/red] (PREFECT_API_URL); "
                    "start that server, or unset PREFECT_API_URL to let sieve serve start one",
                    highlight=False,
                )
                return 1
        else:
            server = LocalPrefectServer(server_home(cfg.warehouse.path), ui=server_ui, startup_timeout=startup_timeout)
            console.print(
                f"starting a Prefect server on {server.url} (database under {server.home}) ...", highlight=False
            )
            with ui_talks_to(server.api_url) as ui_api_url:
                api_url = server.start()
            console.print(f"Prefect UI: {server.url}  (ready in {server.startup_seconds} s)", highlight=False)
            if ui_api_url != api_url:
                console.print(
                    f"[yellow]its UI talks to {ui_api_url}[/yellow] (your PREFECT_UI_API_URL), not to {api_url}",
                    highlight=False,
                )
        os.environ["PREFECT_API_URL"] = api_url  # flow runs are child processes: they inherit it
        write_server_file(cfg.warehouse.path, api_url)  # CLI runs on this warehouse report here too
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


def _serve(cfg: Config, config_path: Path, api_url: str, limit: int, console: Console) -> int:
    """Register the deployments, say how to reach them, then poll for runs until stopped.

    Prefect's own `serve()` prints `$ prefect deployment run ...` without the API address that
    command needs in another shell; this prints its own message, after the deployments exist.
    """
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def register_and_run() -> None:
        runner = Runner(pause_on_shutdown=True, limit=limit)
        for deployment in deployments:
            await runner.aadd_deployment(deployment)
        console.print(serving_message(deployments, api_url), highlight=False, soft_wrap=True)
        await runner.start()

    with temporary_settings(updates={PREFECT_API_URL: api_url}):  # in case Prefect was imported earlier
        deployments = build_deployments(cfg, config_path)
        try:
            asyncio.run(register_and_run())
        except TerminationSignal:  # SIGTERM once the Runner has its own handler: a clean stop
            pass
    return 0


def serving_message(deployments: list[RunnerDeployment], api_url: str) -> str:
    """What `sieve serve` prints once its deployments are registered: what runs when, and how to start one."""
    from prefect.client.schemas.schedules import CronSchedule  # the only kind build_deployments makes

    ui_url = api_url.removesuffix("/").removesuffix("/api")
    width = max(len(f"{d.flow_name}/{d.name}") for d in deployments)
    lines = [f"serving {len(deployments)} deployments (runs execute in this process's children, one at a time):"]
    for d in deployments:
        crons = [f"cron {s.schedule.cron} (UTC)" for s in (d.schedules or []) if isinstance(s.schedule, CronSchedule)]
        lines.append(f"  {f'{d.flow_name}/{d.name}':<{width}}  {', '.join(crons) or 'on demand'}")
    example = next(
        (f"{d.flow_name}/{d.name}" for d in deployments if d.flow_name == "crawl"),
        f"{deployments[0].flow_name}/{deployments[0].name}",
    )
    lines += [
        f"UI: {ui_url}/deployments",
        "start a run by hand from another shell:",
        f"  export PREFECT_API_URL={api_url}",
        f"  prefect deployment run '{example}'",
        "Ctrl-C stops serving (and the server sieve started).",
    ]
    return "\n".join(lines)


@contextmanager
def ui_talks_to(api_url: str) -> Iterator[str]:
    """While a server starts: its UI's API address (`PREFECT_UI_API_URL`) is `api_url`, unless the user set one.

    Prefect's UI reads it from the server's settings (`/ui-settings`), defaulting to port 4200
    whatever port the server listens on. The server copies the environment when it starts, so the
    variable is set only for that moment. Yields the address the UI will use.
    """
    own = os.environ.get("PREFECT_UI_API_URL") or os.environ.get("PREFECT_SERVER_UI_API_URL")
    if own:
        yield own
        return
    os.environ["PREFECT_UI_API_URL"] = api_url
    try:
        yield api_url
    finally:
        os.environ.pop("PREFECT_UI_API_URL", None)


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

    from flows.config import CONFIG_ENV, DEFAULT_CONFIG, ConfigError, load_config

    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=main.__doc__)
    parser.add_argument("--work-pool", required=True, help="an existing Prefect work pool (type process)")
    parser.add_argument(
        "--config",
        default=os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG,
        type=Path,
        help=f"config file (default: ${CONFIG_ENV}, else ./config.yaml)",
    )
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
    ids = deploy_to_work_pool(
        cfg, config_path=args.config, work_pool=args.work_pool, worker_config_path=args.worker_config
    )
    print(
        f"{len(ids)} deployments in work pool {args.work_pool!r}; start workers with "
        f"`prefect worker start --pool {args.work_pool}`"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
