"""config.yaml is refused at load time with the file, the key and the reason; good config is typed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, mutate) -> Path:
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    mutate(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_bundled_config_loads_typed() -> None:
    config = load_config(ROOT / "config.yaml")
    assert {"juredian", "demo"} <= set(config.sources)
    juredian = config.sources["juredian"]
    assert {"www.juredian.com", "www.juredian.net"} <= set(juredian.allowed_hosts)
    assert config.warehouse.path.is_absolute() and config.warehouse.path.name == "sieve.duckdb"
    assert config.crawl_settings("demo").delay_seconds == 0.0          # per-source override
    assert config.crawl_settings("juredian").delay_seconds == config.crawl.delay_seconds


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (lambda c: c["crawl"].update(concurrency=0), "crawl.concurrency", "greater than or equal to 1"),
        (lambda c: c["crawl"].update(colour="red"), "crawl.colour", "Extra inputs are not permitted"),
        (lambda c: c["sources"]["demo"].update(schedule="every day"), "sources.demo.schedule", "invalid cron"),
        (lambda c: c["sources"]["demo"].update(article_url_pattern="(["), "sources.demo.article_url_pattern", "invalid regex"),
        (lambda c: c["sources"]["demo"]["rules"].update(drop_lines=["(unclosed"]), "sources.demo.rules.drop_lines", "invalid regex"),
        (lambda c: c["sources"]["demo"].update(start_urls=["ftp://x/"]), "sources.demo.start_urls", "http"),
        (lambda c: c["sources"]["demo"].update(allowed_hosts=["example.org"]), "sources.demo", "not on allowed_hosts"),
        (lambda c: c["sources"]["demo"]["crawl"].update(retries=-1), "sources.demo.crawl.retries", "greater than or equal to 0"),
        (lambda c: c.update(sources={}), "sources", "at least 1"),
        (lambda c: c["pipeline"].update(commit_rows=0), "pipeline.commit_rows", "greater than or equal to 1"),
        (lambda c: c["pipeline"].update(extract_budget_seconds=0), "pipeline.extract_budget_seconds", "greater than 0"),
        (lambda c: c["sources"]["demo"].update(max_list_pages=0), "sources.demo.max_list_pages", "greater than or equal to 1"),
    ],
)
def test_bad_config_names_file_key_and_reason(tmp_path: Path, mutate, key: str, reason: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert key in message
    assert reason in message


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_cli_exits_2_on_bad_config(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda c: c["crawl"].update(timeout_seconds=-5))
    for argv in (["crawl", "demo"], ["sql", "SELECT 1"], ["stats"]):
        proc = subprocess.run(
            [sys.executable, "-m", "flows.cli", *argv, "--config", str(path)],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        assert "crawl.timeout_seconds" in proc.stderr and str(path) in proc.stderr


def test_cli_exits_2_on_unknown_source(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "crawl", "nosuchsource", "--config", str(ROOT / "config.yaml")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 2
    assert "nosuchsource" in proc.stderr
