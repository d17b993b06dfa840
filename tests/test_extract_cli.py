"""`sieve extract` on bad input, run as a user runs it (issues 13 and 14): every failure has its
reason in text mode too, the exit code is 1 when any input gave no article, files are read up to
crawl.max_bytes and only when regular, and --explain shows the pipeline's decisions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.faultserver import FaultServer

GOLDEN = ROOT / "tests" / "golden"


def _sieve(*argv: str, cwd: Path = ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_bad_files_each_say_why_and_exit_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.html"
    zero.symlink_to("/dev/zero")           # read to the end, this is 3 GB in 1.5 s and more
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)                        # opened, this blocks for ever
    garbage = tmp_path / "noise.html"
    garbage.write_bytes(bytes(range(1, 32)) * 300)
    cases = {
        "/bin/ls": "not_html", str(tmp_path / "missing.html"): "unreadable", str(tmp_path): "unreadable",
        str(empty): "empty", str(zero): "unreadable", str(fifo): "unreadable", str(garbage): "undecodable",
    }
    run = _sieve("extract", *cases, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "(untitled)" not in run.stdout
    for path, kind in cases.items():
        line = next((ln for ln in run.stderr.splitlines() if ln.startswith(f"{path}: no article")), None)
        assert line is not None, (path, run.stderr)
        assert f"({kind}" in line, line
    assert "is a directory" in run.stderr and "not a regular file" in run.stderr and "no such file" in run.stderr


def test_files_are_read_up_to_max_bytes(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["crawl"]["max_bytes"] = 4096
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    big = tmp_path / "big.html"
    big.write_bytes((GOLDEN / "juredian_seed.html").read_bytes() * 3)
    run = _sieve("extract", "--config", str(config_path), "--json", str(big))
    assert run.returncode == 1
    record = json.loads(run.stdout)
    assert record["error"] == "too_large" and "4,096" in record["detail"]


def test_good_file_exits_0_and_a_mix_exits_1(tmp_path: Path) -> None:
    good = str(GOLDEN / "juredian_seed.html")
    run = _sieve("extract", good)
    assert run.returncode == 0, run.stderr
    assert "以上,欢迎交流。" in run.stdout
    mixed = _sieve("extract", "--json", good, str(GOLDEN / "list_juredian.html"))
    assert mixed.returncode == 1
    first, second = (json.loads(line) for line in mixed.stdout.splitlines())
    assert "text" in first and second["error"] == "list_page"


def test_http_failures_say_why(fault_server: FaultServer) -> None:
    fault_server.robots("User-agent: *\nAllow: /\n")
    missing = fault_server.page("/gone.html", "<html><body>not here</body></html>", status=404)
    run = _sieve("extract", missing, "http://no-such-host.invalid/a.html", timeout=90)
    assert run.returncode == 1
    lines = [ln for ln in run.stderr.splitlines() if "no article" in ln]
    assert len(lines) == 2
    assert "http_4xx" in lines[0] and "404" in lines[0]
    assert lines[1].startswith("http://no-such-host.invalid/a.html: no article (")


def test_explain_shows_decoding_candidates_choice_and_removals() -> None:
    page = str(GOLDEN / "juredian_seed.html")
    run = _sieve("extract", "--explain", page)
    assert run.returncode == 0, run.stderr
    for needle in ("decoding", "utf-8", "candidates", "density", "trafilatura", "chosen", "removed",
                   "我唯一的个人微信", "drop_lines"):
        assert needle in run.stdout, needle
    as_json = _sieve("extract", "--explain", "--json", page)
    record = json.loads(as_json.stdout)
    explain = record["explain"]
    assert {c["name"] for c in explain["candidates"]} >= {"density", "trafilatura"}
    assert explain["chosen"] in ("density", "trafilatura")
    removed = {r["text"] for r in explain["removed"]}
    assert "我唯一的个人微信" in removed and "添加请备注来自公众号" in removed
    assert all(r["rule"] for r in explain["removed"])
    assert explain["decoding"].startswith("utf-8")
    assert record["text"] == json.loads(_sieve("extract", "--json", page).stdout)["text"]   # same output


@pytest.mark.parametrize("flag", ["--help"])
def test_help_documents_exit_codes(flag: str) -> None:
    run = _sieve("extract", flag)
    assert run.returncode == 0
    assert "Exit code" in run.stdout and "--explain" in run.stdout
