"""Run every benchmark (each in its own process) and regenerate BENCHMARKS.md.

    python -m bench.run_all [--quick] [--only extraction,server,crawl,warehouse,scaling,startup,profile,pyspy] [--report-only]

`make bench` runs the full sizes (about an hour on 2 idle cores); `--quick` uses small sizes (a few
minutes) and says so in the report. `--report-only` rewrites BENCHMARKS.md from bench/out/*.json.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import PYTHON, ROOT, quiet_env

BENCHMARKS = ("extraction", "server", "crawl", "warehouse", "scaling", "startup", "profile", "pyspy")


def run(name: str, quick: bool) -> float:
    cmd = [PYTHON, "-m", f"bench.{name}"] + (["--quick"] if quick and name != "startup" else [])
    print(f"\n=== {' '.join(cmd[1:])}  (load average {os.getloadavg()[0]:.2f})", flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=quiet_env(), cwd=str(ROOT))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    durations = {}
    if not args.report_only:
        for name in args.only.split(","):
            if name not in BENCHMARKS:
                sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
            durations[name] = round(run(name, args.quick), 1)
    from bench.report import write_report

    path = write_report(durations)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
