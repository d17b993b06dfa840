"""CLI start-up: `sieve sql "SELECT 1"` on a small warehouse and `sieve extract --help`, against `python -c pass`.

Hyperfine-like: one warm-up, then >= 10 timed runs of each command as a subprocess, interleaved; median
and min-max. Also lists the slowest imports of `sieve sql` (python -X importtime) so a regression has a name.

    python -m bench.startup [--runs 15]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import OUT, PYTHON, ROOT, median, quiet_env, spread, table, verdict, write_json

TARGET_S = 0.5
SIEVE = str(Path(PYTHON).parent / "sieve")


def small_warehouse(folder: Path) -> Path:
    """A config whose warehouse holds a migrated, nearly empty file (what `sieve sql` opens)."""
    from warehouse import Warehouse

    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["warehouse"]["path"] = str(folder / "small.duckdb")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    Warehouse(folder / "small.duckdb").migrate()
    return path


def time_once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-1000:]}")
    return elapsed


def slowest_imports(cmd: list[str], env: dict[str, str], top: int = 12) -> list[list[Any]]:
    proc = subprocess.run([PYTHON, "-X", "importtime", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, cwd=str(ROOT), text=True)
    found = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if m:
            found.append((int(m.group(2)), len(m.group(3)), m.group(4)))
    # top-level-ish packages only (depth <= 2 spaces of nesting), by cumulative microseconds
    shallow = sorted((f for f in found if f[1] <= 3), reverse=True)[:top]
    return [[name, round(us / 1000, 1)] for us, _, name in shallow]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    runs = max(10, args.runs)
    env = quiet_env()                     # .pyc cached, as after a normal install
    empty_cache = Path(tempfile.mkdtemp(prefix="no-pyc-", dir=OUT.parent / "out")) if OUT.exists() else Path(tempfile.mkdtemp())
    # an empty pycache prefix and no writing: every start compiles from source, as this environment would
    no_cache_env = quiet_env({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(empty_cache)}, bytecode=False)
    (OUT / "tmp").mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="startup-", dir=OUT / "tmp"))
    try:
        config = small_warehouse(folder)
        commands = {
            "python -c pass (baseline)": [PYTHON, "-c", "pass"],
            'sieve sql "SELECT 1"': [SIEVE, "sql", "SELECT 1", "--config", str(config)],
            "sieve extract --help": [SIEVE, "extract", "--help"],
        }
        variants = {label: (cmd, env) for label, cmd in commands.items()}
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):   # this environment's setting, measured apart
            for label in list(commands)[1:]:
                variants[f"{label} (PYTHONDONTWRITEBYTECODE=1: no .pyc cache)"] = (commands[label], no_cache_env)
        times: dict[str, list[float]] = {label: [] for label in variants}
        for cmd, cmd_env in variants.values():   # warm-up: page cache, .pyc files
            time_once(cmd, cmd_env)
        for _ in range(runs):
            for label, (cmd, cmd_env) in variants.items():
                times[label].append(time_once(cmd, cmd_env))
        imports = slowest_imports(["-m", "flows.cli", "sql", "SELECT 1", "--config", str(config)], env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(empty_cache, ignore_errors=True)
    baseline = median(times["python -c pass (baseline)"])
    results = []
    for label, values in times.items():
        results.append({"command": label, "median_s": round(median(values), 4),
                        "min_max_s": [round(v, 4) for v in spread(values)],
                        "over_baseline_s": round(median(values) - baseline, 4), "runs": runs,
                        "target_met": None if ("baseline" in label or "no .pyc" in label) else median(values) < TARGET_S})
    payload = {"benchmark": "startup", "command": "python -m bench.startup", "results": results,
               "slowest_imports_sieve_sql": imports,
               "target_met": all(r["target_met"] for r in results if r["target_met"] is not None)}
    write_json("startup", payload)
    print(render(payload))
    return payload


def render(payload: dict[str, Any]) -> str:
    rows = [[r["command"], r["median_s"], f"{r['min_max_s'][0]}-{r['min_max_s'][1]}", r["over_baseline_s"],
             verdict(r["target_met"]) if r["target_met"] is not None else ""] for r in payload["results"]]
    text = table(["command", "median s", "min-max s", "s over `python -c pass`", f"target < {TARGET_S} s"], rows)
    text += "\n\nSlowest imports of `sieve sql` (cumulative ms, python -X importtime): " + ", ".join(
        f"{name} {ms}" for name, ms in payload["slowest_imports_sieve_sql"][:8])
    return text


if __name__ == "__main__":
    main()
