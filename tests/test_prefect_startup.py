"""Commands that run no flow never import Prefect (`import prefect` alone costs 1-1.4 s).

The commands run in one fresh interpreter through `flows.cli.app`, the same app the `sieve` script
starts; after each command the probe prints how many `prefect` modules are loaded, so the first
command that pulls Prefect in is named. `sieve --help` is also timed in its own interpreter.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config

PROBE = """
import json, sys
from flows.cli import app
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="sieve")
    except SystemExit as exc:
        code = exc.code or 0
    else:
        code = 0
    loaded = sum(1 for m in list(sys.modules) if m == "prefect" or m.startswith("prefect."))
    sys.stderr.write("\\nPROBE " + json.dumps({"args": args, "code": code, "prefect": loaded}) + "\\n")
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def run_probe(commands: list[list[str]], cwd: Path, extra: str = "") -> tuple[list[dict], str]:
    done = subprocess.run([sys.executable, "-c", extra + PROBE, json.dumps(commands)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=120)
    reports = [json.loads(line[6:]) for line in done.stderr.splitlines() if line.startswith("PROBE ")]
    assert len(reports) == len(commands), f"probe exit {done.returncode}:\n{done.stderr[-3000:]}"
    return reports, done.stdout


@pytest.fixture(scope="module")
def config_with_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from warehouse import Warehouse

    tmp = tmp_path_factory.mktemp("startup")
    config = write_config(tmp, "http://127.0.0.1:9")
    Warehouse(tmp / "sieve.duckdb").migrate()
    return config


def test_commands_that_run_no_flow_never_import_prefect(config_with_warehouse: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    body = "".join(f"<p>这是第{i}段正文,讲一个人在小城市开店的经历和感受,内容足够长。</p>" for i in range(12))
    page.write_text(f"<html><head><title>小城开店</title></head><body><article>{body}</article></body></html>",
                    encoding="utf-8")
    config = str(config_with_warehouse)
    commands = [
        ["--help"],
        ["extract", "--help"],
        ["sql", "--help"],
        ["crawl", "--help"],      # --help of a flow command must not pay for Prefect either
        ["serve", "--help"],
        ["sql", "SELECT 40 + 2 AS answer", "--format", "csv", "--config", config],
        ["stats", "--config", config],
        ["sources", "--config", config],
        ["--version"],
        ["extract", str(page), "--json"],
        ["eval", "--help"],
        ["export", "--help"],
    ]
    reports, stdout = run_probe(commands, tmp_path)
    for report in reports:
        assert report["code"] == 0, report
        assert report["prefect"] == 0, f"`sieve {' '.join(report['args'])}` imported Prefect"
    assert "answer\n42" in stdout.replace("\r", "")
    assert '"url"' in stdout   # extract printed a JSON line


def test_the_probe_sees_prefect_when_something_imports_it(tmp_path: Path) -> None:
    """Guard against a probe that always says 0."""
    reports, _ = run_probe([["--help"]], tmp_path, extra="import prefect\n")
    assert reports[0]["prefect"] > 0


def test_sieve_help_starts_fast(tmp_path: Path) -> None:
    """Well under a second on an idle machine; the bound is loose because CI shares two cores."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.cli", "--help"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - started
    assert done.returncode == 0 and "Usage" in done.stdout
    assert seconds < 5.0, f"sieve --help took {seconds:.2f} s"
