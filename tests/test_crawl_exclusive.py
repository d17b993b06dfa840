"""Two plain `sieve crawl demo` on one machine, the second started while the first runs: the second is refused
with a message naming the run that holds the source, fetches nothing, and no page is fetched twice (issue 15:
before, both exited 0 and 1,564 URLs of a 1,500-article site were fetched twice). Real processes, the session's
Prefect server, a slow demo site."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from demo import DemoSite
from tests.conftest import ROOT, write_config
from tests.faultserver import FaultServer

from .fleet_support import serve_site


def _crawl(config: Path, api_url: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "crawl", "demo", "--config", str(config), "-q"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_crawl_of_a_running_source_is_refused_and_fetches_nothing(prefect_harness, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    from warehouse import Warehouse

    api_url = PREFECT_API_URL.value()
    articles = threading.Event()      # the first crawl's article pages wait for it: it is mid-crawl while the second starts
    with FaultServer() as site:
        serve_site(site, DemoSite(20), gate=articles)
        config = write_config(tmp_path, site.base_url, demo_overrides={"crawl": {"per_host_concurrency": 2}},
                              crawl={"timeout_seconds": 60})
        first = _crawl(config, api_url)
        deadline = time.monotonic() + 120
        while not site.requests_for("/list/2.html") and time.monotonic() < deadline:   # its run row exists by now
            time.sleep(0.05)
        assert site.requests_for("/list/2.html"), first.communicate(timeout=5)
        second = _crawl(config, api_url)
        out2, err2 = second.communicate(timeout=180)
        assert first.poll() is None                                   # still held at the gate
        articles.set()
        out1, err1 = first.communicate(timeout=180)
        assert first.returncode == 0, err1
        assert second.returncode == 1, (out2, err2)
        hits = Counter(path for path in site.paths() if path != "/robots.txt")
        assert max(hits.values()) == 1 and len(hits) > 20
    runs = Warehouse(tmp_path / "sieve.duckdb").query("SELECT run_id, status FROM crawl_runs").rows
    [(run_id, status)] = runs                                         # the refused run left no row
    assert status == "completed"
    message = " ".join(err2.split())
    assert re.search(rf"source 'demo' is being fetched by run {run_id} \(crawl, started .* process \d+ on ", message), message
    assert "this crawl did not start and fetched nothing" in message
