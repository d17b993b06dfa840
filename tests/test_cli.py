"""The non-flow CLI commands, run as a user runs them: a subprocess of `python -m flows.cli`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from demo import DemoSite
from tests.conftest import ROOT


def _sieve(*argv: str, cwd: Path = ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def _write_pages(tmp_path: Path, site: DemoSite, numbers: list[int]) -> list[Path]:
    paths = []
    for number in numbers:
        _, body, _ = site.render(site.article_path(number))
        path = tmp_path / f"article-{number}.html"
        path.write_bytes(body)       # GBK pages stay GBK bytes: the CLI decodes like the crawler does
        paths.append(path)
    return paths


def test_extract_json_many_inputs_in_order(tmp_path: Path) -> None:
    site = DemoSite(60)
    numbers = [1, 2, 7, 17, 30]   # 7 and 17 are GBK with only a <meta charset>
    pages = _write_pages(tmp_path, site, numbers)
    list_page = tmp_path / "list.html"
    list_page.write_bytes(site.render("/list/1.html")[1])
    missing = tmp_path / "missing.html"
    inputs = [str(pages[0]), str(list_page), str(missing), *map(str, pages[1:])]
    proc = _sieve("extract", "--json", "--source", "demo", *inputs)
    assert proc.returncode == 1, proc.stderr   # two inputs gave no article (issue 14: exit 1 then)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == len(inputs)
    assert "error" in records[1] and "error" in records[2]
    good = [records[0], *records[3:]]
    for number, record in zip(numbers, good):
        truth = site.article(number)
        assert record["title"] == truth.title
        assert record["text"] == truth.text
        assert set(record) >= {"url", "title", "author", "published_at", "text"}
        if truth.published_at is not None:
            assert record["published_at"] == truth.published_at.isoformat()


def test_extract_global_rules_without_source(tmp_path: Path) -> None:
    """No --source: the built-in genre rules alone must still remove the aggregator's chrome."""
    site = DemoSite(60)
    (page,) = _write_pages(tmp_path, site, [3])
    proc = _sieve("extract", "--json", str(page))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    for marker in ("搜索建议", "热博", "(展开)", "我唯一的个人微信", "免责声明", "聚热点"):
        assert marker not in record["text"]
    assert record["text"].splitlines()[-1] == "以上,欢迎交流。"


def test_extract_plain_output_and_url_option(tmp_path: Path) -> None:
    site = DemoSite(60)
    (page,) = _write_pages(tmp_path, site, [5])
    proc = _sieve("extract", "--url", "https://www.juredian.com/news/5.html", str(page))
    assert proc.returncode == 0, proc.stderr
    assert site.article(5).title in proc.stdout
    assert site.article(5).paragraphs[0] in proc.stdout
    bad = _sieve("extract", "--url", "https://x/1.html", str(page), str(page))
    assert bad.returncode == 2


def test_sql_without_warehouse_and_bad_sql(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    proc = _sieve("sql", "SELECT 1", "--config", str(config))
    assert proc.returncode == 1 and "no warehouse" in proc.stderr


def test_help_for_every_command() -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    for command in ("demo", "crawl", "backfill", "reextract", "extract", "sql", "stats", "export", "eval", "serve",
                    "rules suggest"):
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "--config" in result.output, command
