"""Run every benchmark (each in its own process) and regenerate BENCHMARKS.md.

    python -m bench.run_all [--quick] [--only race,extraction,server,crawl,warehouse,scaling,startup,profile,pyspy]
                            [--report-only]

`make bench` runs the full sizes (over an hour on 2 idle cores; the race alone, `make bench
BENCH_ARGS="--only race"`, about 12 minutes on 2 quiet cores); `--quick` uses small sizes (a few minutes) and says so in
the report. `--report-only` rewrites BENCHMARKS.md from bench/out/*.json (the whole file when every
part has a JSON there, else only the race section). A part that fails is named and the others still
run; the exit code is then 1.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import PYTHON, ROOT, quiet_env

BENCHMARKS = ("race", "extraction", "server", "crawl", "warehouse", "scaling", "startup", "profile", "pyspy")


def run(name: str, quick: bool) -> tuple[float, int]:
    cmd = [PYTHON, "-m", f"bench.{name}"] + (["--quick"] if quick and name != "startup" else [])
    print(f"\n=== {' '.join(cmd[1:])}  (load average {os.getloadavg()[0]:.2f})", flush=True)
    start = time.perf_counter()
    code = subprocess.run(cmd, env=quiet_env(), cwd=str(ROOT)).returncode
    return time.perf_counter() - start, code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    durations, failed = {}, []
    if not args.report_only:
        names = args.only.split(",")
        if unknown := [n for n in names if n not in BENCHMARKS]:
            sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        for name in names:
            seconds, code = run(name, args.quick)
            durations[name] = round(seconds, 1)
            if code != 0:
                failed.append(f"{name} (exit {code})")
    from bench.common import read_json
    from bench.report import splice_race, write_report

    missing = [name for name in BENCHMARKS if read_json(name) is None]
    if not missing:
        path = write_report(durations)
    elif read_json("race") is not None:   # a partial bench: rewrite only the race, keep the rest of the file as it is
        path = splice_race()
        print(f"no bench/out JSON for {', '.join(missing)}: only the race section was rewritten")
    else:
        sys.exit(f"no bench/out JSON for {', '.join(missing)}: BENCHMARKS.md left as it is")
    print(f"\nwrote {path}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
