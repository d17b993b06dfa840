"""Two plain `sieve crawl demo` on one machine, the second started while the first runs: the second is refused
with a message naming the run that holds the source, fetches nothing, and no page is fetched twice (issue 15:
before, both exited 0 and 1,564 URLs of a 1,500-article site were fetched twice). Real processes, the session's
Prefect server, a slow demo site."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from demo import DemoServer, DemoSite
from tests.conftest import ROOT, write_config


def _crawl(config: Path, api_url: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "crawl", "demo", "--config", str(config), "-q"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_crawl_of_a_running_source_is_refused_and_fetches_nothing(prefect_harness, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    from warehouse import Warehouse

    api_url = PREFECT_API_URL.value()
    with DemoServer(DemoSite(40), latency_s=0.15) as demo:
        config = write_config(tmp_path, demo.base_url, demo_overrides={"crawl": {"per_host_concurrency": 2}})
        first = _crawl(config, api_url)
        deadline = time.monotonic() + 120
        while not demo.requests and time.monotonic() < deadline:   # the first run row exists before any fetch
            time.sleep(0.05)
        assert demo.requests, first.communicate(timeout=5)
        before = len(demo.requests)
        second = _crawl(config, api_url)
        out2, err2 = second.communicate(timeout=180)
        during = len(demo.requests)
        out1, err1 = first.communicate(timeout=180)
        assert first.returncode == 0, err1
        assert second.returncode == 1, (out2, err2)
        hits = Counter(path for path, _ in demo.requests if path != "/robots.txt")
        assert max(hits.values()) == 1 and len(hits) > 40
        assert during > before                                        # the first was fetching all along
    runs = Warehouse(tmp_path / "sieve.duckdb").query("SELECT run_id, status FROM crawl_runs").rows
    [(run_id, status)] = runs                                         # the refused run left no row
    assert status == "completed"
    message = " ".join(err2.split())
    assert re.search(rf"source 'demo' is being fetched by run {run_id} \(crawl, started .* process \d+ on ", message), message
    assert "this crawl did not start and fetched nothing" in message
