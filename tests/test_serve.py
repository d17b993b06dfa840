"""`sieve serve` against a real Prefect server: deployments, their crons and parameters, a triggered run.

One `sieve serve` subprocess for the whole module, started WITHOUT `PREFECT_API_URL`, so it also
starts (and must stop) its own `prefect server start` on 127.0.0.1 with its database next to the
warehouse, UI on. The test talks to that server through Prefect's client, triggers the demo crawl
deployment against a DemoServer on an ephemeral port, and checks the run, its artifact, the
warehouse's run row, and that the UI's settings point at this server (not Prefect's default port
4200) and list the run through that address. Cost: one fresh server database (~15-30 s) plus one
flow run.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from demo import DemoServer, DemoSite
from flows.prefect_env import server_home
from tests.conftest import ROOT, copy_prefect_database, write_config

DEMO_CRON = "0 3 1 1 *"        # crons that cannot fire while the test runs
OTHER_CRON = "45 5 2 1 *"
STARTUP_TIMEOUT = 180


class ServeProcess:
    """`python -m flows.cli serve` as a child; collects its output on a thread."""

    def __init__(self, config_path: Path, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(home),               # an empty profile: no PREFECT_API_URL from ~/.prefect
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            PREFECT_SERVER_UI_ENABLED="true",      # the UI's settings are part of what is tested
            PREFECT_RUNNER_POLL_FREQUENCY="1",   # pick the triggered run up within a second, not ten
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
            COLUMNS="200",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--config", str(config_path)],
            cwd=config_path.parent, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not printed by sieve serve (exit {self.process.poll()}):\n{self.output}")

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, prefect_database: Path):
    """(serve process, API URL, config path, demo server): one real server for the module, its
    database a copy of the session's migrated one (an empty one costs Prefect's migrations, 12 CPU-s)."""
    tmp = tmp_path_factory.mktemp("serve")
    copy_prefect_database(prefect_database, server_home(tmp / "sieve.duckdb") / "prefect.db")
    with DemoServer(DemoSite(12)) as demo:
        config_path = write_config(tmp, demo.base_url, demo_overrides={"schedule": DEMO_CRON})
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        assert len(raw["sources"]) >= 2, "the test needs a second source"
        for name, source in raw["sources"].items():
            if name != "demo":
                source["schedule"] = OTHER_CRON
        config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        serve = ServeProcess(config_path, tmp / "client-home")
        try:
            ui = serve.wait_for(r"Prefect UI: (http://127\.0\.0\.1:\d+)", STARTUP_TIMEOUT).group(1)
            serve.wait_for(r"start a run by hand", 60)
            yield serve, f"{ui}/api", config_path, demo
        finally:
            stop_and_reap(serve)


def stop_and_reap(serve: ServeProcess) -> None:
    """Teardown after a failure: SIGTERM (so serve stops its server), then SIGKILL whatever is left."""
    children = serve.descendants()
    if serve.process.poll() is None:
        serve.process.terminate()
        try:
            serve.process.wait(30)
        except subprocess.TimeoutExpired:
            serve.process.kill()
            serve.process.wait(10)
    _, alive = psutil.wait_procs(children, timeout=10)
    for process in alive:
        process.kill()


async def _deployments(api_url: str) -> dict[str, object]:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url) as client:
        found = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}": d for d in found}


pytestmark = pytest.mark.slow   # a fresh server database and a flow run in a child process: 60-150 s on 2 cores


def test_serve_refuses_an_api_url_that_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from flows.config import load_config
    from flows.prefect_env import free_port
    from flows.serve import serve_deployments

    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    console = Console(record=True, width=200)
    config_path = write_config(tmp_path, "http://127.0.0.1:9")
    assert serve_deployments(load_config(config_path), config_path=config_path, console=console) == 1
    assert "does not answer" in console.export_text()
    assert not (tmp_path / "prefect").exists(), "it must not start a server of its own"


def test_the_ui_address_is_set_only_while_the_server_starts_and_the_users_own_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.serve import ui_talks_to

    monkeypatch.delenv("PREFECT_UI_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_UI_API_URL", raising=False)
    with ui_talks_to("http://127.0.0.1:5555/api") as url:
        assert url == os.environ["PREFECT_UI_API_URL"] == "http://127.0.0.1:5555/api"
    assert "PREFECT_UI_API_URL" not in os.environ
    monkeypatch.setenv("PREFECT_UI_API_URL", "http://localhost:8080/api")   # e.g. behind an SSH tunnel
    with ui_talks_to("http://127.0.0.1:5555/api") as url:
        assert url == os.environ["PREFECT_UI_API_URL"] == "http://localhost:8080/api"
    assert os.environ["PREFECT_UI_API_URL"] == "http://localhost:8080/api"


def test_serve_registers_one_crawl_deployment_per_source_with_its_cron(served) -> None:
    serve, api_url, config_path, _ = served
    deployments = asyncio.run(_deployments(api_url))
    sources = yaml.safe_load(config_path.read_text(encoding="utf-8"))["sources"]
    expected = {f"crawl/{name}" for name in sources} | {"backfill/on-demand", "reextract/on-demand"}
    assert set(deployments) == expected

    for name, source in sources.items():
        deployment = deployments[f"crawl/{name}"]
        assert deployment.parameters == {"source": name, "config_path": str(config_path.resolve())}
        assert [s.schedule.cron for s in deployment.schedules] == [source["schedule"]]
        assert all(s.active for s in deployment.schedules)
        assert deployment.entrypoint == "flows.crawl.crawl"
    for name in ("backfill/on-demand", "reextract/on-demand"):
        assert deployments[name].schedules == []
        assert deployments[name].parameters == {"config_path": str(config_path.resolve())}
    # its own server keeps its database next to the warehouse
    assert (config_path.parent / "prefect").is_dir()


async def _run_and_wait(api_url: str, deployment_id, parameters: dict, timeout: float):
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url) as client:
        run = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = await client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            await asyncio.sleep(0.5)
        artifacts = await client.read_artifacts()
        return run, [a for a in artifacts if a.flow_run_id == run.id]


@pytest.fixture(scope="module")
def triggered_crawl(served):
    """(flow run, its artifacts): the demo crawl deployment, started once through the API, finished."""
    serve, api_url, _, _ = served
    deployment = asyncio.run(_deployments(api_url))["crawl/demo"]
    return asyncio.run(_run_and_wait(api_url, deployment.id, {"max_pages": 8}, timeout=150))


def test_serve_says_how_to_start_a_run_from_another_shell(served) -> None:
    serve, api_url, _, _ = served
    # Prefect's own message gives `prefect deployment run` without the address it needs elsewhere
    assert f"export PREFECT_API_URL={api_url}" in serve.output
    assert "prefect deployment run 'crawl/" in serve.output
    assert re.search(r"crawl/demo\s+cron 0 3 1 1 \* \(UTC\)", serve.output), serve.output
    assert re.search(r"reextract/on-demand\s+on demand", serve.output), serve.output


def test_a_triggered_crawl_runs_in_the_served_process_and_leaves_a_run_row(served, triggered_crawl) -> None:
    from warehouse import Warehouse

    serve, api_url, config_path, demo = served
    run, artifacts = triggered_crawl

    assert run.state is not None and run.state.is_completed(), f"{run.state}\n{serve.output[-3000:]}"
    assert run.parameters["source"] == "demo" and run.parameters["max_pages"] == 8
    assert any(path.startswith("/list/") for path, _ in demo.requests), "the run fetched nothing from the demo site"
    assert any("crawl: demo" in (a.data or "") for a in artifacts), "no run artifact (is the artifact call awaited in the async flow?)"
    rows = Warehouse(Path(yaml.safe_load(config_path.read_text())["warehouse"]["path"])).query(
        "SELECT kind, source_id, status FROM crawl_runs")
    assert ("crawl", "demo", "completed") in [tuple(r) for r in rows.rows]


def test_the_ui_talks_to_the_server_sieve_serve_started(served, triggered_crawl) -> None:
    """What the browser does first: read /ui-settings, then list flow runs at the API it names."""
    import httpx

    _, api_url, _, _ = served
    run, _ = triggered_crawl
    ui_url = api_url.removesuffix("/api")
    with httpx.Client(timeout=30, trust_env=False) as client:
        settings = client.get(f"{ui_url}/ui-settings")
        assert settings.status_code == 200, settings.text
        ui_api_url = settings.json()["api_url"]
        assert ui_api_url == api_url, f"the UI would talk to {ui_api_url}, not to the server sieve started"
        runs = client.post(f"{ui_api_url}/flow_runs/filter", json={"limit": 50})
        assert runs.status_code == 200, runs.text
        assert str(run.id) in [r["id"] for r in runs.json()], "the UI's API does not list the triggered run"
        page = client.get(f"{ui_url}/", headers={"Accept": "text/html"}, follow_redirects=True)
        assert page.status_code == 200 and "<html" in page.text.lower(), "the UI itself is not served"


def test_deployments_can_go_to_a_work_pool_for_workers_elsewhere(served) -> None:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.config import load_config
    from flows.serve import deploy_to_work_pool

    _, api_url, config_path, _ = served

    async def create_pool() -> None:
        async with PrefectClient(api_url) as client:
            await client.create_work_pool(WorkPoolCreate(name="sieve-test", type="process"))

    asyncio.run(create_pool())
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        ids = deploy_to_work_pool(load_config(config_path), config_path=config_path, work_pool="sieve-test",
                                  worker_config_path="/srv/sieve/config.yaml")
    deployments = asyncio.run(_deployments(api_url))
    in_pool = {name: d for name, d in deployments.items() if d.work_pool_name == "sieve-test"}
    assert len(ids) == len(in_pool) == len(deployments)
    assert in_pool["crawl/demo"].parameters == {"source": "demo", "config_path": "/srv/sieve/config.yaml"}
    assert [s.schedule.cron for s in in_pool["crawl/demo"].schedules] == [DEMO_CRON]


def test_sigterm_stops_serve_and_its_server_cleanly(served) -> None:
    serve, api_url, _, _ = served
    children = serve.descendants()
    assert any("prefect" in " ".join(p.cmdline()) and "server" in p.cmdline() for p in children), children
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(60) == 0, serve.output[-2000:]
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"orphans left behind: {alive}"
    assert "stopping the Prefect server" in serve.output
