"""Shared helpers for the benchmarks: timing, repeated runs, RSS sampling, the demo server, output.

Why a sampler thread for memory: peak RSS must include the extraction pool's worker processes and
Prefect's server subprocess, which `resource.getrusage` cannot sum; psutil polling the process tree
every 50 ms can (it sums RSS, so pages shared between processes count once per process).
"""
from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable

# Prefect and friends stay quiet and offline in every process the benchmarks start.
QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
}


def quiet_env(extra: dict[str, str] | None = None, *, bytecode: bool = True) -> dict[str, str]:
    """The current environment with the quiet settings (the caller's own values win) and the repo on PYTHONPATH.

    bytecode=True drops PYTHONDONTWRITEBYTECODE: a normal install caches .pyc files, while with it set every
    process start (CLI, extraction workers) recompiles ~120 modules (about 0.6 s on these machines).
    """
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TreeSampler:
    """Poll a process tree: summed RSS (peak), last CPU seconds per process, every process seen."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self._root: psutil.Process | None
        self.interval_s = interval_s
        self.peak = 0
        self.peak_processes = 0
        self.cpu: dict[tuple[int, float], float] = {}
        self.rss: dict[tuple[int, float], int] = {}      # peak RSS of each process
        self.seen: dict[tuple[int, float], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._followed: list[psutil.Process] = []
        try:
            self._root = psutil.Process(pid)
        except psutil.Error:
            self._root = None

    def follow(self, procs: list[psutil.Process]) -> None:
        """Once the root is gone: go on sampling `procs` (and only them) in a new thread until `stop`."""
        self._root, self._followed = None, procs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        if self._root is None:
            procs = [p for p in self._followed if p.is_running()]
            if not procs:
                return
        else:
            try:
                procs = [self._root, *self._root.children(recursive=True)]
            except psutil.Error:
                return
        total = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    rss = proc.memory_info().rss
                    total += rss
                    self.rss[key] = max(rss, self.rss.get(key, 0))
                    times = proc.cpu_times()
                    self.cpu[key] = times.user + times.system
                    # Read every poll, not once: a forked child keeps its parent's command line until it execs
                    # (the temporary Prefect server); a child that never execs is told apart by its name.
                    command, name = " ".join(proc.cmdline()[:6])[:160], proc.name()
                    self.seen[key] = command if name in command else f"[{name}] {command}"
            except psutil.Error:
                pass
        if total > self.peak:
            self.peak, self.peak_processes = total, len(procs)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    @property
    def cpu_s(self) -> float:
        """CPU seconds of every process seen in the tree (up to its last sample, so a hair low)."""
        return sum(self.cpu.values())

    def __enter__(self) -> TreeSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def alive_descendants(self) -> list[psutil.Process]:
        alive = []
        for (pid, created), _ in self.seen.items():
            if pid == self.pid:
                continue
            try:
                proc = psutil.Process(pid)
                if abs(proc.create_time() - created) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.Error:
                pass
        return alive


def run_measured(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout_s: float = 3600,
                 cwd: Path | None = None) -> dict[str, Any]:
    """Run a worker command, sample its process tree's RSS, parse the JSON line it prints last.

    Workers print one JSON object as the last line of stdout; the sampler adds `peak_rss_mb`.
    """
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or quiet_env(), cwd=str(cwd or ROOT))
    with TreeSampler(proc.pid) as sampler:
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            raise RuntimeError(f"{' '.join(cmd)} timed out after {timeout_s} s\n{stderr[-2000:]}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}\n{stderr[-4000:]}")
    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no JSON result\n{stdout[-2000:]}\n{stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["peak_rss_mb"] = round(sampler.peak / 2**20, 1)
    result["tree_cpu_s"] = round(sampler.cpu_s, 3)
    if "cpu_before_s" in result:   # the worker's own CPU before its timed part (imports): not the crawl's
        result["cpu_s"] = round(sampler.cpu_s - result["cpu_before_s"], 3)
    result["peak_processes"] = sampler.peak_processes
    return result


@dataclass
class DemoServerProcess:
    """`python -m demo` in a subprocess on 127.0.0.1, so the crawlers get the cores to themselves
    as far as the OS allows, and its memory is not counted as theirs."""

    articles: int
    port: int = 0
    proc: subprocess.Popen | None = None
    latency_ms: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DemoServerProcess:
        self.port = self.port or free_port()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "demo", "--port", str(self.port), "--articles", str(self.articles),
             "--latency-ms", f"{self.latency_ms:g}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=quiet_env(), cwd=str(ROOT),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"demo server exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("demo server did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


LIBRARIES = ("trafilatura", "selectolax", "httpx", "duckdb", "prefect", "scrapy", "twisted", "lxml",
             "pyarrow", "psutil", "pyinstrument")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": versions(*LIBRARIES),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "git": git_state(),
    }


def git_state() -> str:
    """The commit measured, and which layer files differed from it (the tree is shared and changes under us)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=str(ROOT),
                              timeout=10).stdout.strip()
        # the benchmarks change more often than what they measure: name the last commit of sieve's own code too
        code = subprocess.run(["git", "log", "-1", "--format=%h", "--", "flows", "pipeline", "crawler", "extractors",
                               "warehouse", "outcomes", "demo", "config.yaml", "pyproject.toml", "requirements.lock"],
                              capture_output=True, text=True, cwd=str(ROOT), timeout=10).stdout.strip()
        if code and code != head:
            head += f" (sieve code as of {code})"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "crawler", "extractors", "warehouse", "flows",
                                "pipeline", "outcomes"],
                               capture_output=True, text=True, cwd=str(ROOT), timeout=10).stdout.split("\n")
        changed = [line[3:] for line in dirty if line.strip()]
        return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_json(name: str, payload: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path


def read_json(name: str) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "met" if ok else ("not met" if ok is not None else "n/a")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (extraction pool workers once joined)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
