"""Where Prefect runs: quiet defaults for its temporary server, and a real local server for scheduling.

Two ways to run sieve's flows without anyone setting up Prefect:

- `sieve crawl` and friends run on Prefect's *temporary* server (a subprocess Prefect starts on its
  own when `PREFECT_API_URL` is unset). `apply_quiet_defaults()` keeps it offline (no telemetry),
  patient on slow machines and quiet on the terminal. The user's own settings always win.
- `sieve serve` needs a *real* server, because the temporary one cannot schedule ("Cannot schedule
  flows on an ephemeral server"). `LocalPrefectServer` starts `prefect server start` on 127.0.0.1
  with its database under the project's data folder, waits until `/api/health` answers, and stops
  it (and only it: it runs in its own process group) on exit.

This module never imports Prefect, so the CLI can use it before deciding whether Prefect is needed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

QUIET_DEFAULTS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",   # DO_NOT_TRACK alone still makes a telemetry DNS lookup
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",   # default 20 s; 8-26 s seen on a fresh database
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
    """Linux: the server gets SIGTERM if `sieve serve` dies without cleaning up (SIGKILL, OOM)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


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
        env.pop("PREFECT_API_URL", None)   # the server is the API; it must not talk to another one
        env.update(PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        command = [
            sys.executable, "-m", "prefect", "server", "start",
            "--host", self.host, "--port", str(self.port), "--analytics-off",
        ]
        if self.ui is not None:   # None: PREFECT_SERVER_UI_ENABLED decides (on by default)
            command.append("--ui" if self.ui else "--no-ui")
        started = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
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
            try:   # the leader is gone; sweep anything it left behind in its group
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

    def __enter__(self) -> "LocalPrefectServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
