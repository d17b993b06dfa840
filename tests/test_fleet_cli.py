"""`sieve fleet ...` at the command line: status and load work without Prefect (and never import it), and a fleet
crawl refuses to start without a Prefect server its workers could reach."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import yaml

from tests.conftest import ROOT, write_config
from tests.test_prefect_startup import run_probe
from warehouse import FrontierRow, Warehouse
from warehouse.shards import START_PART, Shard, ShardStore, window_part

from .test_warehouse_support import T0, fetch


def _fleet_config(tmp_path: Path) -> Path:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["fleet"] = {"shards": "shards"}                      # relative: next to the config file
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_status_and_load_show_and_apply_what_landed_without_prefect(tmp_path: Path) -> None:
    config = _fleet_config(tmp_path)
    wh = Warehouse(tmp_path / "sieve.duckdb")
    wh.add_frontier([FrontierRow("http://127.0.0.1:9/list/1.html", "demo", "list")])
    [claim] = wh.claim("run-1", "demo", max_claims=1, claim_urls=5, lease=timedelta(hours=1))
    wh.release()
    store = ShardStore(str(tmp_path / "shards"))
    store.write(Shard("demo", claim.claim_id, START_PART, written_at=T0))
    store.write(Shard("demo", claim.claim_id, window_part(1), written_at=T0,
                      fetches=[fetch("http://127.0.0.1:9/list/1.html", kind="list", html=None)]))
    half = Path(store.write(Shard("demo", claim.claim_id, window_part(2), written_at=T0)))
    (half / "manifest.json").unlink()                           # a worker still writing it
    reports, stdout = run_probe([["fleet", "--help"], ["fleet", "crawl", "--help"],
                                 ["fleet", "status", "--config", str(config)],
                                 ["fleet", "load", "--config", str(config)],
                                 ["fleet", "status", "--config", str(config)]], tmp_path)
    for report in reports:
        assert report["code"] == 0 and report["prefect"] == 0, report
    assert claim.claim_id in stdout and "127.0.0.1:9" in stdout
    assert "2 complete parts waiting for the loader, 1 without a manifest" in stdout
    flat = " ".join(stdout.split())                             # rich wraps lines at the terminal's width
    assert "loaded 2 ·" in flat and "fetched 1" in flat
    assert "0 complete parts waiting for the loader, 1 without a manifest" in stdout
    assert Warehouse(tmp_path / "sieve.duckdb").query("SELECT count(*) FROM fetches").rows == [(1,)]


def test_a_fleet_crawl_needs_a_shared_prefect_server(tmp_path: Path) -> None:
    config = _fleet_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "empty-profile"),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "flows.cli", "fleet", "crawl", "demo", "--config", str(config)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "needs a Prefect server its workers can reach" in " ".join(done.stderr.split())
