"""The non-flow CLI commands, run as a user runs them: a subprocess of `python -m flows.cli`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import yaml

from demo import DemoSite
from tests.conftest import ROOT

COMMANDS = ("demo", "crawl", "backfill", "reextract", "extract", "sql", "stats", "sources", "export", "eval", "serve",
            "rules suggest")


def _sieve(*argv: str, cwd: Path = ROOT, timeout: int = 120, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "SIEVE_CONFIG"}
    environ.update(PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {}))
    return subprocess.run([sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=environ)


def _config_in(tmp_path: Path, **sources: dict) -> Path:
    """The bundled config with its warehouse in tmp_path (and extra sources, if given)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["warehouse"]["path"] = str(tmp_path / "sieve.duckdb")
    config["sources"].update(sources)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


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
    for number, record in zip(numbers, good, strict=True):
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


def test_extract_plain_output_keeps_each_paragraph_on_one_line(tmp_path: Path) -> None:
    paragraphs = [f"新华网长春12月9日电（记者张建 周长庆）第{i}段：据有关部门最新提供的消息，" + "当地 " * 40 + "。"
                  for i in range(6)]
    page = tmp_path / "spaces.html"
    page.write_text("<html><head><title>有空格的段落</title></head><body><article>"
                    + "".join(f"<p>{p}</p>" for p in paragraphs) + "</article></body></html>", encoding="utf-8")
    proc = _sieve("extract", str(page))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for paragraph in paragraphs:
        assert paragraph in lines, "a paragraph was wrapped over several lines"


def test_sql_exit_codes_no_warehouse_1_bad_query_2(tmp_path: Path) -> None:
    from warehouse import Warehouse

    config = _config_in(tmp_path)
    proc = _sieve("sql", "SELECT 1", "--config", str(config))
    assert proc.returncode == 1 and "no warehouse" in proc.stderr
    assert not (tmp_path / "sieve.duckdb").exists(), "a query must not create the warehouse"

    warehouse = Warehouse(tmp_path / "sieve.duckdb")
    warehouse.migrate()
    warehouse.release()
    good = _sieve("sql", "--format", "json", "SELECT count(*) AS n FROM articles", "--config", str(config))
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == [{"n": 0}]
    refused = {
        "SELEC 1": "syntax error",
        "SELECT * FROM no_such_table": "no_such_table",
        "SELECT no_such_column FROM articles": "no_such_column",
        "CREATE TABLE t (a INTEGER)": "read-only",
        "": "empty query",
        " ; ": "empty query",
    }
    for query, reason in refused.items():
        proc = _sieve("sql", query, "--config", str(config))
        assert proc.returncode == 2, (query, proc.returncode, proc.stderr)   # bad usage: fix the query
        assert reason in proc.stderr, (query, proc.stderr)
        assert "Traceback" not in proc.stderr, (query, proc.stderr)
    documented = _sieve("sql", "-h", env={"COLUMNS": "200"})
    assert "Exit 2: the query is refused" in documented.stdout and "Exit 1: the warehouse" in documented.stdout


def test_help_for_every_command_with_h_and_help() -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    for command in COMMANDS:
        for flag in ("-h", "--help"):
            result = runner.invoke(app, [*command.split(), flag])
            assert result.exit_code == 0, (command, flag, result.output)
            assert "--config" in result.output and "SIEVE_CONFIG" in result.output, (command, flag)
    top = runner.invoke(app, ["-h"])
    assert top.exit_code == 0 and "sources" in top.output and "--version" in top.output


def test_version() -> None:
    for flag in ("--version", "-V"):
        proc = _sieve(flag)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"sieve {version('sieve')}"


def test_shell_completion_script_and_completions() -> None:
    # Typer names the shell from the parent process (a shell when a user types it; not under nohup or a
    # service); its test switch takes the shell from the argument instead, whatever runs the suite
    script = _sieve("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.returncode == 0, script.stderr
    assert "_SIEVE_COMPLETE=complete_bash" in script.stdout and "complete " in script.stdout
    # what bash asks on TAB: `sieve sou<TAB>` and `sieve crawl --con<TAB>`
    for words, cword, expected in (("sieve sou", "1", "sources"), ("sieve crawl --con", "2", "--config")):
        proc = _sieve(env={"_SIEVE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [expected], (words, proc.stdout)


def test_missing_config_says_how_to_name_one_and_sieve_config_works(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _sieve("stats", cwd=elsewhere)
    assert proc.returncode == 2
    assert "config.yaml: file not found" in proc.stderr and str(elsewhere) in proc.stderr
    assert "--config" in proc.stderr and "SIEVE_CONFIG" in proc.stderr

    config = _config_in(tmp_path)
    found = _sieve("sources", "--format", "json", cwd=elsewhere, env={"SIEVE_CONFIG": str(config)})
    assert found.returncode == 0, found.stderr
    assert {r["source"] for r in json.loads(found.stdout)} == {"juredian", "demo"}
    wrong = _sieve("stats", cwd=elsewhere, env={"SIEVE_CONFIG": str(tmp_path / "nope.yaml")})
    assert wrong.returncode == 2 and "SIEVE_CONFIG is set to it" in wrong.stderr
    explicit = _sieve("sources", "--config", str(tmp_path / "nope.yaml"), cwd=elsewhere,
                      env={"SIEVE_CONFIG": str(config)})
    assert explicit.returncode == 2, "--config wins over SIEVE_CONFIG"


def test_sources_without_a_warehouse(tmp_path: Path) -> None:
    config = _config_in(tmp_path)
    proc = _sieve("sources", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    for name in ("juredian", "demo", "www.juredian.com", "*/30 * * * * (UTC)", "never crawled"):
        assert name in proc.stdout, (name, proc.stdout)
    assert "no warehouse" in proc.stderr
    assert not (tmp_path / "sieve.duckdb").exists(), "sources must not create the warehouse"


def test_sources_reads_last_network_run_and_health(tmp_path: Path) -> None:
    from tests.test_warehouse_support import article, fetch
    from warehouse import Warehouse

    config = _config_in(tmp_path, idle={"start_urls": ["https://idle.example/"], "allowed_hosts": ["idle.example"]})
    wh = Warehouse(tmp_path / "sieve.duckdb")
    old = wh.start_run("crawl", "demo", {})
    wh.record_fetches([fetch(f"https://demo.example/old/{n}", run_id=old, error="timeout", status=None)
                       for n in range(3)], revisit_after=timedelta(days=1))
    wh.finish_run(old, "completed", {})
    demo = wh.start_run("crawl", "demo", {})   # the latest crawl decides: 1 of 5 failed
    wh.record_fetches([fetch(f"https://demo.example/a/{n}", run_id=demo) for n in range(4)]
                      + [fetch("https://demo.example/private/1", run_id=demo, error="robots", status=None)],
                      revisit_after=timedelta(days=1))
    wh.finish_run(demo, "completed", {})
    wh.record_extractions([article(1), article(2), article(3, text=article(1).text)], [])   # one duplicate
    down = wh.start_run("backfill", "juredian", {})
    wh.record_fetches([fetch(f"https://www.juredian.com/{n}.html", source="juredian", run_id=down,
                             error="unreachable", status=None) for n in range(3)], revisit_after=timedelta(days=1))
    wh.finish_run(down, "completed", {})
    wh.finish_run(wh.start_run("reextract", "idle", {}), "completed", {})   # no network: not a crawl
    wh.release()
    before = (tmp_path / "sieve.duckdb").stat()

    proc = _sieve("sources", "--format", "json", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    rows = {r["source"]: r for r in json.loads(proc.stdout)}
    assert list(rows) == ["juredian", "demo", "idle"]   # config order
    assert rows["demo"]["health"] == "ok, 1 of 5 fetches failed (robots)"
    assert rows["demo"]["articles"] == 2
    assert rows["demo"]["last_crawl"].endswith("UTC")
    assert rows["juredian"]["health"] == "failing: all 3 fetches failed (unreachable)"
    assert rows["juredian"]["last_crawl"].endswith("(backfill)")
    assert rows["idle"]["health"] == "never crawled" and rows["idle"]["last_crawl"] is None
    assert rows["idle"]["schedule"] == "none (on demand)"
    table = _sieve("sources", "--config", str(config))
    assert table.returncode == 0 and "failing: all 3 fetches failed" in table.stdout
    after = (tmp_path / "sieve.duckdb").stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns), "sources wrote to the warehouse"
