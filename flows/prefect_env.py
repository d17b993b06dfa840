"""Where Prefect runs: a server that is already up, a temporary one started off the critical path,
and a real local server for scheduling.

- `sieve crawl` and friends (flows/prefect_run.py) use a running server when there is one: the
  `PREFECT_API_URL` of the environment or of the active Prefect profile, else the server `sieve serve`
  started for this warehouse (it writes `<warehouse folder>/prefect/server.json`), so CLI runs show
  in that server's UI. With none, they start Prefect's temporary server themselves
  (`TemporaryPrefectServer` in flows/prefect_run.py, the same uvicorn app Prefect would start) at once,
  in the background, from the flow process (flows/flow_process.py) while the crawl runs; it runs in its
  own session (a Ctrl-C on the terminal reaches sieve only), dies with the process that started it (even
  on SIGKILL), and is stopped without waiting once the run is recorded. `apply_quiet_defaults()` keeps it
  offline, patient and quiet.
- `sieve serve` needs a *real* server, because the temporary one cannot schedule ("Cannot schedule
  flows on an ephemeral server"). `LocalPrefectServer` starts `prefect server start` on 127.0.0.1
  with its database under the project's data folder, waits until `/api/health` answers, and stops
  it (and only it: it runs in its own process group) on exit.

This module never imports Prefect, so the CLI can use it before deciding whether Prefect is needed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

QUIET_DEFAULTS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # DO_NOT_TRACK alone still makes a telemetry DNS lookup
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # default 20 s; 8-26 s seen on a fresh database
    "PREFECT_LOGGING_LOG_PRINTS": "false",
}


def apply_quiet_defaults(*, logging_level: str = "WARNING", environ: dict[str, str] | None = None) -> None:
    """Set Prefect's offline, patient, quiet defaults unless the user already set them.

    Call it before `import prefect`: Prefect reads most settings once, at import.
    """
    env = os.environ if environ is None else environ
    for key, value in QUIET_DEFAULTS.items():
        env.setdefault(key, value)
    env.setdefault("PREFECT_LOGGING_LEVEL", logging_level)


def server_home(warehouse_path: Path) -> Path:
    """Where `sieve serve` keeps its Prefect server's database: next to the warehouse, in `prefect/`."""
    return Path(warehouse_path).resolve().parent / "prefect"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if its parent dies without cleaning up (SIGKILL, OOM). The signal
    follows the thread that started the child: start servers from the main thread."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def spawn_server(command: list[str], env: dict[str, str], log_path: Path, *, append: bool) -> subprocess.Popen[bytes]:
    """A server process in its own session (the terminal's Ctrl-C does not reach it), dying with its
    parent (Linux), its output in `log_path`."""
    with open(log_path, "ab" if append else "wb") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


class PrefectServerError(RuntimeError):
    """The local Prefect server did not start (or died); the message ends with its log's tail."""


class LocalPrefectServer:
    """`prefect server start` on 127.0.0.1 as a child process, for as long as a `with` block lasts.

    The child runs in its own session: a Ctrl-C on the terminal reaches `sieve serve` only, which
    first stops its runner (the runner pauses the schedules through the API, so the server must
    still be up), then stops the server with SIGTERM (SIGKILL after `stop_timeout`). On Linux the
    child also asks the kernel for SIGTERM when its parent dies, so even a SIGKILLed `sieve serve`
    leaves no server behind. Start it from the main thread (the signal follows the starting thread).
    """

    def __init__(
        self,
        home: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ui: bool | None = None,
        startup_timeout: float = 120.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.home = Path(home)
        self.host = host
        self.port = port or free_port(host)
        self.ui = ui
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        """The UI's address (and the API's root)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def start(self) -> str:
        """Start the server and wait until it is healthy; returns the API URL."""
        if self.process is not None:
            return self.api_url
        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("PREFECT_API_URL", None)  # the server is the API; it must not talk to another one
        env.update(PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        command = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--analytics-off",
        ]
        if self.ui is not None:  # None: PREFECT_SERVER_UI_ENABLED decides (on by default)
            command.append("--ui" if self.ui else "--no-ui")
        started = time.perf_counter()
        self.process = spawn_server(command, env, self.log_path, append=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.perf_counter() - started, 2)
        return self.api_url

    def _wait_healthy(self) -> None:
        import httpx

        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                if self.process.poll() is not None:
                    raise PrefectServerError(
                        f"prefect server exited with code {self.process.returncode} before it was healthy"
                        f"{self._log_tail()}"
                    )
                try:
                    response = client.get(f"{self.api_url}/health")
                    if response.status_code == 200 and response.json() is True:
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise PrefectServerError(
                        f"prefect server on {self.url} not healthy after {self.startup_timeout:.0f} s{self._log_tail()}"
                    )
                time.sleep(0.25)

    def stop(self) -> None:
        """Stop the server's whole process group: SIGTERM, then SIGKILL if it lingers. Idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            try:  # the leader is gone; sweep anything it left behind in its group
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.strip().splitlines()[-lines:])
        return f"; its log ({self.log_path}) ends:\n{tail}" if tail else ""

    def __enter__(self) -> LocalPrefectServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- a running server, or a temporary one ---------------------------------------------------------------
SERVER_FILE = "server.json"


def server_file(warehouse_path: Path) -> Path:
    """Where `sieve serve` says which Prefect server it runs (or uses) for this warehouse."""
    return server_home(warehouse_path) / SERVER_FILE


def write_server_file(warehouse_path: Path, api_url: str) -> Path:
    """Called by `sieve serve` once its server answers; CLI runs on the same warehouse then report to it."""
    path = server_file(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"api_url": api_url, "pid": os.getpid(), "started_at": time.time()}), encoding="utf-8")
    return path


def remove_server_file(warehouse_path: Path) -> None:
    try:
        data = json.loads(server_file(warehouse_path).read_text(encoding="utf-8"))
        if data.get("pid") == os.getpid():  # only our own: another serve may have taken over
            server_file(warehouse_path).unlink()
    except (OSError, ValueError):
        pass


def served_api_url(warehouse_path: Path, *, timeout_s: float = 1.0) -> str | None:
    """The API of the server `sieve serve` runs for this warehouse, if its process lives and it answers."""
    try:
        data = json.loads(server_file(warehouse_path).read_text(encoding="utf-8"))
        os.kill(int(data["pid"]), 0)
        url = str(data["api_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if api_healthy(url, timeout_s=timeout_s) else None


def api_healthy(api_url: str, *, timeout_s: float = 1.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def profile_api_url(environ: Mapping[str, str] | None = None) -> str | None:
    """PREFECT_API_URL of the active Prefect profile (`$PREFECT_HOME/profiles.toml`), read without Prefect."""
    import tomllib

    env = os.environ if environ is None else environ
    home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    active = env.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    url = data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def hide_cancel_notice() -> None:
    """Prefect logs a cancelled flow run's end at ERROR; after a Ctrl-C the CLI's one line says it."""
    import logging

    logging.getLogger("prefect.flow_runs").addFilter(
        lambda record: not str(record.msg).startswith("Finished in state Cancelled")
    )


def flush_prefect(timeout_s: float = 5.0) -> None:
    """Send what Prefect still queues (logs, then events: task run states) before the process exits
    without the interpreter's teardown; bounded, `timeout_s` each. Only once Prefect is imported."""
    import logging

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for name in ("EventsWorker", "APILogWorker"):  # "Still processing items: N remaining": they are sent
        logging.getLogger(name).setLevel(logging.ERROR)
    APILogWorker.drain_all(timeout=timeout_s)
    EventsWorker.drain_all(timeout=timeout_s)
