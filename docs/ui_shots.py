"""Screenshots of the Prefect UI that `sieve serve` starts: `make ui-shots` (not part of `make test`).

What it does, all on 127.0.0.1 in a temporary folder:

1. serves the demo aggregator (60 articles) on a free port and writes a config pointing at it;
2. runs `sieve serve` on that config with no `PREFECT_API_URL`, so sieve starts its own Prefect
   server (and UI) on a free port, exactly as a user's `sieve serve` does;
3. starts the `crawl/demo` deployment and then `reextract/on-demand` through the API, and waits
   for both to finish;
4. opens the UI in headless Chromium (Debian's `chromium`) and writes three pictures into
   docs/ui/: the runs list, the crawl run's page and the crawl's summary artifact. Before each
   picture it reads the rendered page (`--dump-dom`) and fails unless the run's data is on it, so a
   UI that cannot reach its API ("Can't connect to Server API") never becomes a picture;
5. stops `sieve serve` with SIGTERM (which stops its server).

Needs /usr/bin/chromium (the make target installs it with apt-get when missing). Takes about a
minute on 2 idle cores.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "ui"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WINDOW = "1440,900"
NEVER_SOON = "0 3 1 1 *"   # crons that do not fire while the script runs: only the runs it starts show


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or set CHROMIUM)", file=sys.stderr)
        return 2
    from demo import DemoServer, DemoSite

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sieve-ui-shots-") as tmp_name, DemoServer(DemoSite(60)) as demo:
        tmp = Path(tmp_name)
        config_path = write_config(tmp, demo.base_url)
        serve = Serve(config_path, tmp / "client-home")
        try:
            api_url = serve.wait_for(r"export PREFECT_API_URL=(\S+)", timeout=240).group(1)
            ui_url = api_url.removesuffix("/api")
            print(f"sieve serve is up: UI {ui_url}")
            crawl_run, artifact_id = asyncio.run(run_deployments(api_url))
            shots = [
                ("runs.png", f"{ui_url}/v2/runs", [crawl_run["name"], "Completed"]),
                ("crawl-run.png", f"{ui_url}/v2/runs/flow-run/{crawl_run['id']}", [crawl_run["name"], "crawling demo into"]),
                ("crawl-summary.png", f"{ui_url}/v2/artifacts/artifact/{artifact_id}", ["crawl: demo", "pages fetched"]),
            ]
            for name, url, must_show in shots:
                screenshot(url, OUT / name, must_show, tmp)
                print(f"wrote {(OUT / name).relative_to(ROOT)}  ({url})")
        finally:
            serve.stop()
    return 0


def write_config(tmp: Path, demo_url: str) -> Path:
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["warehouse"]["path"] = str(tmp / "sieve.duckdb")
    for source in config["sources"].values():
        source["schedule"] = NEVER_SOON
    config["sources"]["demo"]["start_urls"] = [f"{demo_url}/list/1.html"]
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class Serve:
    """`sieve serve` as a child process, its output collected on a thread."""

    def __init__(self, config_path: Path, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
                   PREFECT_RUNNER_POLL_FREQUENCY="1", PYTHONUNBUFFERED="1", COLUMNS="200")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--config", str(config_path)],
            cwd=config_path.parent, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, "\n".join(self.lines))
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"sieve serve never printed {pattern!r}:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


async def run_deployments(api_url: str) -> tuple[dict[str, Any], str]:
    """Start crawl/demo, then reextract/on-demand; wait for both. Returns the crawl run and its artifact id."""
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url) as client:
        deployments = {d.name: d for d in await client.read_deployments()}
        flows = {f.id: f.name for f in await client.read_flows()}
        by_name = {f"{flows[d.flow_id]}/{d.name}": d for d in deployments.values()}
        crawl = await finished(client, by_name["crawl/demo"].id, {})
        await finished(client, by_name["reextract/on-demand"].id, {"source": "demo", "only_stale": False})
        artifacts = [a for a in await client.read_artifacts() if a.flow_run_id == crawl.id]
        if not artifacts:
            raise RuntimeError("the crawl run left no summary artifact")
        return {"id": str(crawl.id), "name": crawl.name}, str(artifacts[0].id)


async def finished(client: Any, deployment_id: Any, parameters: dict[str, Any], timeout: float = 300) -> Any:
    run = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await client.read_flow_run(run.id)
        if run.state is not None and run.state.is_final():
            if not run.state.is_completed():
                raise RuntimeError(f"run {run.name} ended {run.state.type}: {run.state.message}")
            return run
        await asyncio.sleep(0.5)
    raise RuntimeError(f"run {run.name} not finished after {timeout:.0f} s")


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, offline-minded, a fresh profile per call; virtual time lets the SPA load its data."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp))
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={WINDOW}", "--hide-scrollbars",
             "--virtual-time-budget=20000", *args],
            capture_output=True, text=True, timeout=120, check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(url: str, out: Path, must_show: list[str], tmp: Path) -> None:
    dom = chromium(tmp, "--dump-dom", url).stdout
    missing = [text for text in must_show if text not in dom]
    if missing or "Can't connect to Server API" in dom:
        raise RuntimeError(f"{url} does not show {missing} (is the UI talking to its server?)")
    chromium(tmp, f"--screenshot={out}", url)
    if not out.exists() or out.stat().st_size < 10_000:
        raise RuntimeError(f"{out} was not written (or is nearly empty)")


if __name__ == "__main__":
    raise SystemExit(main())
