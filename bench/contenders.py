"""The race's contenders, each started as its own whole process the way its user starts it.

- `sieve`: the installed CLI, `.venv/bin/sieve crawl demo --quiet --config <tmp config>`, no Prefect
  server running (Prefect's temporary server starts inside the run, as for a user who set none up);
- `sieve+server`: the same command with `PREFECT_API_URL` naming a Prefect server the bench started
  on 127.0.0.1 (`prefect server start`), as for a user who runs one;
- `scrapy`: `python -m bench.scrapy_spider` (Scrapy + trafilatura + DuckDB, see that module).

Only the CLI, the config file and the warehouse file are touched, so the race runs unchanged on any
branch whose `sieve crawl` keeps its flags and its `articles`/`fetches` tables.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.common import OUT, PYTHON, ROOT, free_port

SIEVE = str(Path(PYTHON).parent / "sieve")
CONTENDERS = ("sieve", "sieve+server", "scrapy")


def user_env(prefect_home: Path, api_url: str | None = None) -> dict[str, str]:
    """The environment a user's shell would give the CLI: no bench settings beyond PREFECT_HOME.

    PYTHONDONTWRITEBYTECODE is dropped (a normal install caches bytecode); PREFECT_API_URL is set only
    for the running-server contender; every Prefect quiet default is left to the CLI itself.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PREFECT_HOME"] = str(prefect_home)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def write_sieve_config(base: str, folder: Path, *, concurrency: int) -> Path:
    """config.yaml's demo source pointed at `base`: `concurrency` in flight (per host too), no delay, a
    warehouse in `folder`. Everything else (timeouts, retries, robots) stays as a user has it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    config["warehouse"]["path"] = str(folder / "sieve.duckdb")
    config["crawl"].update({"concurrency": concurrency, "per_host_concurrency": concurrency, "delay_seconds": 0.0})
    demo = config["sources"]["demo"]
    demo["start_urls"] = [f"{base}/list/1.html"]
    demo["crawl"] = {"delay_seconds": 0.0, "per_host_concurrency": concurrency}
    config["sources"] = {"demo": demo}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def sieve_command(config: Path, *, max_pages: int | None = None) -> list[str]:
    cmd = [SIEVE, "crawl", "demo", "--quiet", "--config", str(config)]
    return cmd + (["--max-pages", str(max_pages)] if max_pages else [])


def scrapy_command(base: str, db: Path, *, concurrency: int, max_pages: int | None = None) -> list[str]:
    cmd = [PYTHON, "-m", "bench.scrapy_spider", "--base", base, "--db", str(db), "--concurrency", str(concurrency)]
    return cmd + (["--max-pages", str(max_pages)] if max_pages else [])


def scrapy_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def sieve_pages(db: Path) -> int | None:
    """Pages sieve fetched with success (2xx or 304), read from its warehouse; None if unreadable."""
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return int(con.execute("SELECT count(*) FROM fetches WHERE error IS NULL").fetchall()[0][0])
        finally:
            con.close()
    except duckdb.Error:
        return None


def scrapy_pages(stdout: str) -> int | None:
    """Pages Scrapy fetched (responses less robots.txt), from the JSON line its process prints last."""
    import json

    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    if not lines:
        return None
    try:
        return int(json.loads(lines[-1])["pages"])
    except (ValueError, KeyError):
        return None


@dataclass
class PrefectServer:
    """`prefect server start` on 127.0.0.1 in its own session (so its whole group stops with it)."""

    home: Path = OUT / "prefect_server_home"
    port: int = 0
    proc: subprocess.Popen | None = None
    startup_s: float | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def __enter__(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        start = time.perf_counter()
        log = open(self.home / "server.log", "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--analytics-off", "--no-ui"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited {self.proc.returncode}; see {self.home / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        self.startup_s = round(time.perf_counter() - start, 2)
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.__exit__()
        raise RuntimeError("prefect server not healthy after 180 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break


def describe() -> dict[str, Any]:
    """What each contender is, for the JSON and the report."""
    def short(path: str) -> str:
        try:
            return str(Path(path).relative_to(ROOT))
        except ValueError:
            return path

    return {
        "sieve": f"`{short(SIEVE)} crawl demo --quiet --config <tmp config>`; no Prefect server (Prefect's temporary "
                 "server starts inside the run)",
        "sieve+server": "the same, with PREFECT_API_URL naming a running `prefect server start` on 127.0.0.1",
        "scrapy": f"`{short(PYTHON)} -m bench.scrapy_spider` (Scrapy + trafilatura defaults in the callback + DuckDB "
                  "inserts in batches of 500)",
    }
