"""Which Prefect server a CLI run reports to (`prefect_for_run`), and the temporary one it starts when
none is running (`TemporaryPrefectServer`). The served server, the quiet defaults and the helpers both
use live in flows/prefect_env.py. Like it, this module never imports Prefect.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flows.prefect_env import PrefectServerError, free_port, profile_api_url, served_api_url, spawn_server

# What a CLI run's temporary server does without (the user's environment wins). Measured from spawn to
# healthy (3.0-3.9 CPU-s in all): automations' two services (triggers, actions) about 0.3 CPU-s, the
# block types' registration (it loads every installed collection's entry points) 0.1-0.3 s. A CLI run
# uses neither: no automations, no blocks. Task runs, logs, artifacts and events are all still recorded.
TEMPORARY_SERVER_DEFAULTS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    # without this, the registration's memo check still loads every collection first (prefect-dask: dask)
    "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
}


# While a CLI run's temporary server starts (4-7 s, about 4 CPU-s), the crawl is already running and needs
# the CPU more: the server's session runs at this nice until it answers, or YIELD_AT_MOST_S at most.
YIELDING_NICE = 19
YIELD_AT_MOST_S = 30.0


class TemporaryPrefectServer:
    """Prefect's temporary (ephemeral) server, started by sieve instead of by Prefect, so that:

    - it starts at once, in the background, while the caller does other work (`wait_healthy` later);
    - it runs in its own session: the terminal's Ctrl-C does not kill it mid-run;
    - it dies with its parent, even a SIGKILLed one (PR_SET_PDEATHSIG): the flow process, which starts
      it for a CLI run (it is pickled there before `start`), or the CLI for a flow run in-process;
    - it is stopped without waiting for its shutdown (the exit code is known by then).
    It is the same app Prefect starts (uvicorn on `prefect.server.api.server:create_app`, UI off, the
    database under PREFECT_HOME), on a free port of 127.0.0.1.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 120.0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.healthy = False
        self.nice = 0
        home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
        self.log_path = home / "sieve-temporary-server.log"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def start(self, *, yield_cpu: bool = False) -> str:
        """Start it (returns at once) and return its API URL. With `yield_cpu`, until it answers (or
        YIELD_AT_MOST_S) its session runs at YIELDING_NICE: its start takes the CPU the crawl leaves."""
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
        for key, value in TEMPORARY_SERVER_DEFAULTS.items():
            env.setdefault(key, value)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = time.monotonic()
        self.process = spawn_server(self.command(), env, self.log_path, append=False)
        if yield_cpu:
            self._set_share(YIELDING_NICE)
        return self.api_url

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]

    def _set_share(self, nice: int) -> None:
        """The CPU share of the server's session: Linux shares the CPU between sessions first (autogroups),
        so the session's nice is what counts. Raising it back to 0 needs no privilege (below 0 would)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.nice = nice
        try:
            Path(f"/proc/{process.pid}/autogroup").write_text(f"{nice}\n")
        except OSError:  # no autogroups (not Linux, or turned off): the server shares the CPU as any process
            pass

    def recording_log(self, pid: int) -> Path:
        """Where a flow process handed a run to record after the CLI exited logs (flows/flow_process.py)."""
        return self.log_path.with_name(f"sieve-recording-{pid}.log")

    def wait_healthy(self) -> float:
        """Block until /api/health answers; returns the seconds since `start`."""
        assert self.process is not None
        process = self.process

        def gone() -> str | None:
            if self.nice and time.monotonic() - self.started_at > YIELD_AT_MOST_S:
                self._set_share(0)  # the machine is busy with more than this crawl: stop yielding
            return self.exited()

        try:
            wait_until_healthy(self.api_url, self.started_at + self.startup_timeout, gone=gone)
        except PrefectServerError as exc:
            if process.poll() is not None:
                raise
            raise PrefectServerError(f"{exc} ({self.startup_timeout:.0f} s){_tail(self.log_path)}") from None
        finally:
            if self.nice:
                self._set_share(0)  # it answers the flow run's calls at the crawl's priority
        self.healthy = True
        return time.monotonic() - self.started_at

    def exited(self) -> str | None:
        """None while it runs (or was stopped by us); else that it exited, with its log's end."""
        process = self.process
        if process is None or process.poll() is None:
            return None
        return f"Prefect's temporary server exited with code {process.returncode}{_tail(self.log_path)}"

    def wait_recorded(self, task_runs: Mapping[str, int], timeout: float = 5.0) -> bool:
        """`wait_recorded` on this server, if it is up and running."""
        if self.process is None or not self.healthy:
            return True
        process = self.process
        return wait_recorded(self.api_url, task_runs, timeout, alive=lambda: process.poll() is None)

    def stop(self) -> None:
        """SIGTERM to its session, without waiting: it shuts down on its own. Idempotent. One not yet
        healthy gets SIGKILL: uvicorn finishes its start-up (a fresh database's migrations, many seconds)
        before it honours SIGTERM, and SQLite rolls back a migration cut short."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM if self.healthy else signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_until_healthy(api_url: str, deadline: float, *, gone: Callable[[], str | None] = lambda: None) -> None:
    """Block until `api_url`/health answers, or raise PrefectServerError: at `deadline` (monotonic), or
    as soon as `gone()` says why the server will never answer."""
    import httpx

    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if (why := gone()) is not None:
                raise PrefectServerError(why)
            try:
                if client.get(f"{api_url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise PrefectServerError(f"Prefect's server on {api_url} not healthy in time")
            time.sleep(0.05)


def wait_recorded(
    api_url: str, task_runs: Mapping[str, int], timeout: float = 5.0, *, alive: Callable[[], bool] = lambda: True
) -> bool:
    """Block (at most `timeout`) until the server has recorded, in a final state, the `commit-window`
    task runs each flow run reported (flow run id -> count). Task run states reach the server as
    events, written a moment later; one being written when the server is stopped is lost with it
    (Prefect cancels the write and does not retry it at shutdown). True when all are recorded."""
    import httpx

    expected = sum(task_runs.values())
    if not expected:
        return True
    query = {
        "flow_runs": {"id": {"any_": list(task_runs)}},
        "task_runs": {
            "name": {"like_": "commit-window"},
            "state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]}},
        },
    }
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            try:
                if client.post(f"{api_url}/task_runs/count", json=query).json() >= expected:
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline or not alive():
                return False
            time.sleep(0.02)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return f"; its log ({path}) ends:\n" + "\n".join(text.splitlines()[-lines:]) if text else ""


@dataclass
class PrefectForRun:
    """Which Prefect server a CLI run reports to, and the temporary one to stop afterwards (if any)."""

    api_url: str | None
    where: str  # "PREFECT_API_URL", "profile", "sieve serve" or "temporary"
    temporary: TemporaryPrefectServer | None = None


def prefect_for_run(
    warehouse_path: Path, *, environ: dict[str, str] | None = None, start: bool = True
) -> PrefectForRun:
    """Choose the server for a CLI run before Prefect is imported, starting a temporary one if needed
    (unless not `start`: the flow process starts it, flows/flow_process.py).

    Sets PREFECT_API_URL in `environ` for the served and temporary cases (Prefect reads it at import).
    """
    env = os.environ if environ is None else environ
    if env.get("PREFECT_API_URL"):
        return PrefectForRun(env["PREFECT_API_URL"], "PREFECT_API_URL")
    if url := profile_api_url(env):
        return PrefectForRun(url, "profile")
    if url := served_api_url(warehouse_path):
        env["PREFECT_API_URL"] = url
        return PrefectForRun(url, "sieve serve")
    server = TemporaryPrefectServer(
        startup_timeout=float(env.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    )
    env["PREFECT_API_URL"] = server.start() if start else server.api_url
    return PrefectForRun(server.api_url, "temporary", server)
