"""`sieve export` / `Warehouse.export`: never deletes what sieve did not write; bad targets are clear errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from warehouse import ExportError, Warehouse
from warehouse.reports import MANIFEST

from .test_warehouse_support import article

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse(tmp_path / "sieve.duckdb")
    w.record_extractions([article(1), article(2), article(3, source="other")], [])
    return w


def _user_files(out: Path) -> dict[Path, str]:
    files = {out / "notes.txt": "mine", out / "articles" / "keep.parquet": "not sieve's",
             out / "articles" / "source=demo" / "README": "also mine"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def _intact(files: dict[Path, str]) -> bool:
    return all(path.exists() and path.read_text() == text for path, text in files.items())


def test_a_folder_with_files_is_refused_and_left_alone(wh, tmp_path) -> None:
    out = tmp_path / "out"
    files = _user_files(out)
    with pytest.raises(ExportError, match="is not empty.*--overwrite"):
        wh.export(out, "parquet")
    assert _intact(files) and not (out / MANIFEST).exists()


def test_overwrite_replaces_only_sieves_own_files(wh, tmp_path) -> None:
    out = tmp_path / "out"
    first = wh.export(out, "parquet")
    assert len(first) == 2 and all(p.exists() for p in first)           # two sources, one month each
    files = _user_files(out)
    second = wh.export(out, "parquet", source="demo", overwrite=True)
    assert _intact(files)                                                  # even inside articles/source=demo/
    assert [p.relative_to(out).parts[:2] for p in second] == [("articles", "source=demo")]
    assert not any(p.exists() for p in first if "source=other" in str(p))  # sieve's earlier file is gone
    assert pq.read_table(second[0]).num_rows == 2
    assert json.loads((out / MANIFEST).read_text())["files"] == [str(p.relative_to(out)) for p in second]
    # Formats share the folder's manifest: a CSV export replaces the Parquet one, nothing else.
    [csv] = wh.export(out, "csv", overwrite=True)
    assert csv == out / "articles.csv" and not any(p.exists() for p in second) and _intact(files)


def test_a_users_file_at_sieves_output_path_is_not_replaced(wh, tmp_path) -> None:
    out = tmp_path / "out"
    (out).mkdir()
    (out / "articles.csv").write_text("my own csv")
    with pytest.raises(ExportError, match="was not written by sieve"):
        wh.export(out, "csv", overwrite=True)
    assert (out / "articles.csv").read_text() == "my own csv"
    assert [p.name for p in out.iterdir()] == ["articles.csv"]          # no staging folder left behind


def test_a_manifest_cannot_point_outside_the_folder(wh, tmp_path) -> None:
    out = tmp_path / "out"
    wh.export(out, "csv")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / MANIFEST).write_text(json.dumps({"files": ["../victim.txt", str(victim), "articles.csv"]}))
    wh.export(out, "jsonl", overwrite=True)
    assert victim.read_text() == "keep me" and not (out / "articles.csv").exists()


def test_an_unwritable_target_is_an_export_error(wh, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target in (blocker, blocker / "sub"):
        with pytest.raises(ExportError, match="cannot"):
            wh.export(target, "parquet")


def _config(tmp_path: Path) -> Path:
    from .conftest import write_config

    return write_config(tmp_path, "http://127.0.0.1:9")


def _sieve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """As a user runs it: a process of its own."""
    return subprocess.run([sys.executable, "-m", "flows.cli", "export", *args, "--config", str(_config(tmp_path))],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def _invoke(tmp_path: Path, *args: str):
    """The same command in this process (several seconds cheaper per call)."""
    from typer.testing import CliRunner

    from flows.cli import app

    return CliRunner().invoke(app, ["export", *args, "--config", str(_config(tmp_path))])


def test_cli_exit_codes_and_messages(wh, tmp_path) -> None:
    out = tmp_path / "out"
    files = _user_files(out)
    done = _sieve(tmp_path, str(out))
    assert done.returncode == 2 and "not empty" in done.stderr and "--overwrite" in done.stderr
    assert "Traceback" not in done.stderr and _intact(files)
    result = _invoke(tmp_path, str(out), "--overwrite")
    assert result.exit_code == 0 and "wrote 2 file(s)" in result.stdout and _intact(files)
    result = _invoke(tmp_path, str(tmp_path / "new"), "--source", "nosuch")
    assert result.exit_code == 2 and "unknown source 'nosuch'" in result.stderr and not (tmp_path / "new").exists()
    (tmp_path / "a-file").write_text("x")
    result = _invoke(tmp_path, str(tmp_path / "a-file" / "sub"))
    assert result.exit_code == 2 and "cannot" in result.stderr
    assert isinstance(result.exception, SystemExit)                     # a message, not an uncaught error
    wh.path.unlink()
    result = _invoke(tmp_path, str(tmp_path / "empty"))
    assert result.exit_code == 1 and "no warehouse at" in result.stderr
