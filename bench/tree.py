"""Run a command as a user would and measure its whole process tree, from spawn to exit.

What is measured, and why this way:
- wall: from just before `Popen` to the moment the root process is reaped (start-up, teardown, every
  child's lifetime inside the root's all included);
- CPU: `wait4` returns the root's rusage *including every descendant it reaped* (extraction workers,
  Prefect's temporary server), which is exact for those; a psutil poll of the tree every 50 ms also sees
  descendants nobody reaps. The larger of the two is reported, and both are kept;
- peak RSS: the largest sum of RSS over the tree seen by the poll (pages shared after fork count once
  per process, so this is an upper bound: the same sum the other benchmarks report);
- background: a `sieve crawl` over before Prefect's temporary server answered hands its flow run to its
  flow process, which records it after the CLI exited (flows/flow_process.py). That process is followed
  until it ends (bounded, BACKGROUND_S), and with it every descendant still alive (its server): their CPU
  meanwhile counts in the tree's, and how long the flow process ran after the exit is `background_s`
  (the server's own shutdown after that is `lingering`, as always). Cores busy is the tree's CPU while
  the root ran over its wall (the background's CPU is in `cpu_s`, and apart in `background_cpu_s`);
- machine busy: the whole machine's busy CPU over the root's wall (psutil's system-wide times): what the
  processes outside the tree (the site, a running Prefect server) took shows as its excess over the tree's;
- leftovers: other descendants still alive 5 s after the root has exited (a server left behind); they
  are named in the result and then stopped, by pid, so the next run starts on a quiet machine. Those
  alive at the root's exit that end within the 5 s are named too (`lingering`).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.common import ROOT, TreeSampler

LINGER_S = 5.0
BACKGROUND_S = 120.0
# a flow process handed the run: its name when forked, its command line otherwise
BACKGROUND_MARKERS = ("[sieve-flow-run]", "flows.flow_child")


@dataclass
class TreeRun:
    """One measured run of a command and its descendants."""

    command: list[str]
    returncode: int
    wall_s: float
    first_stdout_s: float | None     # when the first byte reached stdout (sieve prints its summary at the end)
    cpu_s: float                     # max(rusage_cpu_s, sampled_cpu_s)
    rusage_cpu_s: float
    sampled_cpu_s: float
    peak_rss_mb: float
    peak_processes: int
    processes_seen: int
    leftovers: list[str] = field(default_factory=list)   # still alive LINGER_S after the root exited
    lingering: list[str] = field(default_factory=list)   # alive when the root exited
    lingered_s: float = 0.0                               # how long until the lingering ones were gone (or LINGER_S)
    background_s: float = 0.0                             # how long the handed-off flow process ran after the exit
    background_cpu_s: float = 0.0                         # its CPU and its server's, after the exit
    machine_busy: float = 0.0                             # the machine's busy cores over the wall (all processes)
    cpu_by_process: dict[str, float] = field(default_factory=dict)   # "pid: command line" -> CPU s seen by the poll
    rss_by_process: dict[str, float] = field(default_factory=dict)   # "pid: command line" -> its own peak RSS MB
    load_before: float = 0.0
    load_after: float = 0.0
    stdout: str = ""
    stderr: str = ""

    @property
    def cores_busy(self) -> float:
        return (self.cpu_s - self.background_cpu_s) / self.wall_s if self.wall_s else 0.0

    def as_dict(self, *, keep_output: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["cores_busy"] = round(self.cores_busy, 3)
        if not keep_output:
            data["stdout"] = self.stdout[-1500:]
            data["stderr"] = self.stderr[-1500:]
        return data


def _stop_leftovers(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(procs, timeout=5)
    for proc in still:
        try:
            proc.kill()
        except psutil.Error:
            pass


def run_tree(cmd: Sequence[str], *, env: dict[str, str], cwd: Path | None = None, timeout_s: float = 3600) -> TreeRun:
    """Run `cmd` to its end and measure it (see the module docstring). Never raises on a non-zero exit."""
    err_file = tempfile.TemporaryFile()
    load_before = os.getloadavg()[0]
    machine_before = psutil.cpu_times()
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_file,
                            env=env, cwd=str(cwd or ROOT))
    sampler = TreeSampler(proc.pid)
    sampler.start()
    first: list[float] = []
    chunks: list[bytes] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        while block := proc.stdout.read1(65536):
            if not first:
                first.append(time.perf_counter() - start)
            chunks.append(block)

    reader = threading.Thread(target=read_stdout, name="stdout-reader", daemon=True)
    reader.start()
    timed_out = threading.Event()

    def watchdog() -> None:
        timed_out.set()
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
        except psutil.Error:
            pass

    timer = threading.Timer(timeout_s, watchdog)
    timer.start()
    try:
        sampler.sample()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    machine_after = psutil.cpu_times()
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    reader.join(10)
    if proc.stdout is not None:
        proc.stdout.close()
    alive = sampler.alive_descendants()
    background = [p for p in alive
                  if any(m in sampler.seen.get((p.pid, p.create_time()), "") for m in BACKGROUND_MARKERS)]
    background_s, cpu_at_exit = 0.0, sum(sampler.cpu.values())
    if background:
        sampler.follow(alive)
        began = time.perf_counter()
        psutil.wait_procs(background, timeout=BACKGROUND_S)
        background_s = round(time.perf_counter() - began, 3)
        sampler.stop()
    background_cpu = sum(sampler.cpu.values()) - cpu_at_exit
    # Descendants may take a moment to notice their parent is gone (a forkserver reads EOF on its pipe):
    # give them LINGER_S; what still runs after that was left behind.
    lingering = sampler.alive_descendants()
    names_lingering = [f"{p.pid}: {sampler.seen.get((p.pid, p.create_time()), '?')}" for p in lingering]
    linger_start = time.perf_counter()
    _, leftovers = psutil.wait_procs(lingering, timeout=LINGER_S) if lingering else ([], [])
    lingered = round(time.perf_counter() - linger_start, 3) if lingering else 0.0
    names = [f"{p.pid}: {sampler.seen.get((p.pid, p.create_time()), '?')}" for p in leftovers]
    _stop_leftovers(leftovers)
    err_file.seek(0)
    stderr = err_file.read().decode(errors="replace")
    err_file.close()
    if timed_out.is_set():
        stderr += f"\n[bench] killed after {timeout_s} s"
    rusage_cpu = usage.ru_utime + usage.ru_stime
    sampled_cpu = sum(sampler.cpu.values())
    return TreeRun(
        command=list(cmd), returncode=proc.returncode, wall_s=round(wall, 3),
        first_stdout_s=round(first[0], 3) if first else None,
        cpu_s=round(max(rusage_cpu, sampled_cpu), 3), rusage_cpu_s=round(rusage_cpu, 3),
        sampled_cpu_s=round(sampled_cpu, 3), peak_rss_mb=round(sampler.peak / 2**20, 1),
        peak_processes=sampler.peak_processes, processes_seen=len(sampler.seen), leftovers=names,
        lingering=names_lingering, lingered_s=lingered, background_s=background_s,
        background_cpu_s=round(background_cpu, 3),
        cpu_by_process={f"{pid}: {sampler.seen.get((pid, created), '?')}": round(cpu, 3)
                        for (pid, created), cpu in sampler.cpu.items()},
        rss_by_process={f"{pid}: {sampler.seen.get((pid, created), '?')}": round(rss / 2**20, 1)
                        for (pid, created), rss in sampler.rss.items()},
        load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2),
        machine_busy=round(_busy_s(machine_before, machine_after) / wall, 3) if wall else 0.0,
        stdout=b"".join(chunks).decode(errors="replace"), stderr=stderr,
    )


def _busy_s(before: Any, after: Any) -> float:
    """CPU seconds the machine spent not idle between two `psutil.cpu_times()` (every core, every process)."""
    idle = ("idle", "iowait")
    total = sum(getattr(after, f) - getattr(before, f) for f in after._fields if f not in ("guest", "guest_nice"))
    return total - sum(getattr(after, f) - getattr(before, f) for f in idle if hasattr(after, f))
