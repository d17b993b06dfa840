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


def _rename(mapping: dict, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


# A typo must be an error, never a silently applied default: each key belongs to another model, so
# relaxing any one model to extra="ignore" fails its case here.
TYPOS = [
    (lambda c: _rename(c, "warehouse", "warehous"), "warehous"),                                     # Config
    (lambda c: _rename(c["warehouse"], "path", "paht"), "warehouse.paht"),                           # WarehouseSettings
    (lambda c: _rename(c["crawl"], "concurrency", "concurency"), "crawl.concurency"),                # CrawlSettings
    (lambda c: _rename(c["sources"]["demo"], "schedule", "schedul"), "sources.demo.schedul"),        # SourceConfig
    (lambda c: _rename(c["sources"]["demo"]["rules"], "drop_selectors", "drop_selector"),
     "sources.demo.rules.drop_selector"),                                                             # Rules
]


@pytest.mark.parametrize(("mutate", "key"), TYPOS, ids=[key for _, key in TYPOS])
def test_a_typo_in_a_key_is_refused(tmp_path: Path, mutate, key: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert f"{path}: {key}: Extra inputs are not permitted" in str(excinfo.value)


def test_cli_exits_2_on_a_typo_naming_file_key_and_reason(tmp_path: Path) -> None:
    for mutate, key in TYPOS[:1] + TYPOS[2:4]:   # the three from issue 16: warehous, crawl.concurency, schedul
        path = _write(tmp_path, mutate)
        proc = subprocess.run([sys.executable, "-m", "flows.cli", "stats", "--config", str(path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == 2, (key, proc.stdout, proc.stderr)
        assert f"{path}: {key}: Extra inputs are not permitted" in proc.stderr, (key, proc.stderr)


BAD_SELECTORS = ["div[", "..content", "#", "p:contains(x)", "div >", " "]


@pytest.mark.parametrize("selector", BAD_SELECTORS)
def test_a_css_selector_lexbor_cannot_parse_is_refused(tmp_path: Path, selector: str) -> None:
    """Extraction skips a selector it cannot parse, silently: config must refuse it, naming where it is."""
    as_content = _write(tmp_path, lambda c: c["sources"]["demo"]["rules"].update(content_selector=selector))
    with pytest.raises(ConfigError, match=r"sources\.demo\.rules\.content_selector: (invalid|empty) CSS selector"):
        load_config(as_content)
    in_list = _write(tmp_path, lambda c: c["sources"]["juredian"]["rules"].update(drop_selectors=[".ok", selector]))
    with pytest.raises(ConfigError) as excinfo:
        load_config(in_list)
    assert f"{in_list}: sources.juredian.rules.drop_selectors.1: " in str(excinfo.value)
    assert "CSS selector" in str(excinfo.value)


def test_selectors_lexbor_parses_are_accepted(tmp_path: Path) -> None:
    good = ["div.a > p:nth-child(2)", "[data-x='1']", "section:not(.ad)", "#js_content", "a, b", "p:has(span)"]
    path = _write(tmp_path, lambda c: c["sources"]["demo"]["rules"].update(drop_selectors=good,
                                                                            content_selector="article .body"))
    rules = load_config(path).sources["demo"].rules
    assert rules.drop_selectors == tuple(good) and rules.content_selector == "article .body"


def test_cli_exits_2_on_a_bad_selector(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda c: c["sources"]["demo"]["rules"].update(drop_selectors=["div["]))
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "sources", "--config", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stdout
    assert f"{path}: sources.demo.rules.drop_selectors.0: invalid CSS selector 'div['" in proc.stderr, proc.stderr


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
