"""The fleet on real parts: a real Prefect server (the session's), a process work pool with two
`prefect worker` processes, the `crawl-claim/fleet` deployment in it, the dispatcher flow in this
process, and two demo hosts behind FaultServers that count requests in flight.

- every article is stored exactly once, no page is fetched twice, no host ever sees more than its
  per-host limit at once across both workers, the claims ran in both worker processes, and one claim
  per host did the whole host (its list pages and the articles found on them);
- loading the shards again adds nothing;
- a worker SIGKILLed mid-window loses nothing: once its lease ends its claim is given to the other
  worker and every article is stored; pages fetched twice are only the killed worker's uncommitted ones.
Cost: two worker processes (about 5 s each to start) and a few claim runs, each a child process;
windows commit every second (each is a task run on the server, whose SQLite database is the bottleneck).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT

from .fleet_support import Hosts, demo_hosts, fetched_by_claim, fleet_config
from .test_warehouse_support import dump

pytestmark = pytest.mark.slow   # two worker processes and a child process per claim: 60-120 s on 2 cores


class Pool:
    """A process work pool with the claim deployment, and `prefect worker` processes polling it."""

    def __init__(self, name: str, api_url: str, home: Path) -> None:
        self.name, self.api_url, self.home = name, api_url, home
        self.workers: list[subprocess.Popen] = []

    def start_worker(self, n: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home / f"worker-{n}"),
                   PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
                   PREFECT_LOGGING_LEVEL="INFO", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
        log = open(self.home / f"worker-{n}.log", "ab")
        self.workers.append(subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", self.name, "--limit", "1",
             "--name", f"{self.name}-{n}"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True))

    def logs(self) -> str:
        return "\n".join((self.home / f"worker-{n}.log").read_text(errors="replace")[-3000:]
                         for n in range(len(self.workers)))

    def stop(self) -> None:
        for worker in self.workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for worker in self.workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def pool(prefect_harness, tmp_path_factory):
    from prefect.settings import PREFECT_API_URL

    from flows.fleet import deploy_claims

    pool = Pool(f"fleet-test-{uuid.uuid4().hex[:6]}", PREFECT_API_URL.value(), tmp_path_factory.mktemp("pool"))
    deploy_claims(pool.name)
    for n in range(2):
        pool.start_worker(n)
    try:
        yield pool
    finally:
        pool.stop()


def _dispatch(config: Path) -> dict:
    from flows.fleet import dispatch

    return asyncio.run(dispatch(source="demo", config_path=str(config)))


def _manifests(shards: Path, area: str = "loaded") -> list[dict]:
    """The parts' manifests in `area`; one the loader moves to loaded/ meanwhile is skipped."""
    manifests = []
    for path in sorted((shards / area).rglob("manifest.json")):
        try:
            manifests.append(json.loads(path.read_text()))
        except FileNotFoundError:
            continue
    return manifests


def _stored(config: Path) -> list[str]:
    from flows.config import load_config
    from warehouse import Warehouse

    wh = Warehouse(load_config(config).warehouse.path)
    return [u for (u,) in wh.query("SELECT url FROM articles ORDER BY url").rows]


def _claims(config: Path) -> dict[str, str]:
    from flows.config import load_config
    from warehouse import Warehouse

    return {c.claim_id: c.status for c in Warehouse(load_config(config).warehouse.path).claims(open_only=False)}


def test_two_workers_store_every_article_once_and_never_share_a_host(pool: Pool, tmp_path: Path) -> None:
    with demo_hosts(2, 20, latency_s=0.1) as hosts:
        config = fleet_config(tmp_path, hosts, per_host=2, commit_seconds=1.0,
                              fleet={"work_pool": pool.name, "max_claims": 3, "claim_urls": 40, "lease_seconds": 60,
                                     "start_seconds": 180})
        result = _dispatch(config)
        stored = _stored(config)
        assert result["status"] == "completed", pool.logs()
        assert len(stored) == len(set(stored)) and set(stored) == hosts.article_urls()
        assert hosts.fetched_twice() == {}
        assert max(hosts.max_in_flight()) <= 2 and min(hosts.max_in_flight()) == 2
        articles = hosts.article_urls()
    claims = _claims(config)
    # one claim per host: its list pages, and the articles they revealed, fetched by the claim's own worker
    assert len(claims) == 2 and set(claims.values()) == {"done"}
    fetched = fetched_by_claim(tmp_path / "shards")
    by_host = {u.split("/")[2]: set() for u in articles}
    for url in articles:
        by_host[url.split("/")[2]].add(url)
    assert sorted(by_host) == sorted(h for c in fetched for h in _claim_hosts(config, c))
    assert all(set(urls) >= by_host[next(iter(_claim_hosts(config, c)))] for c, urls in fetched.items())
    parts = _manifests(tmp_path / "shards")
    workers = {m["worker"].split()[-1] for m in parts}                 # host:pid of each claim's run
    assert len(workers) == len(claims)                                 # one process per claim run ...
    assert len({m["worker"].split()[0] for m in parts}) == len(claims)   # ... one flow run per claim
    ran_on = {line.split("Worker '", 1)[1].split("'", 1)[0] for line in pool.logs().splitlines()
              if "submitting flow run" in line.lower() and "Worker '" in line}
    assert len(ran_on) == 2, pool.logs()                               # both worker processes took claims
    # the loader run again over the same shards: nothing changes
    from flows.config import load_config
    from pipeline.dispatch import load_pass
    from warehouse.shards import ShardStore

    before = dump(load_config(config).warehouse.path)
    shutil.copytree(tmp_path / "shards" / "loaded", tmp_path / "shards" / "incoming", dirs_exist_ok=True)
    cfg = load_config(config)
    again = load_pass(cfg.warehouse.path, ShardStore(cfg.fleet.shards))
    assert again["loaded"] == 0 and again["already"] == len(parts)
    assert dump(load_config(config).warehouse.path) == before


def _fetched(shards: Path, area: str, manifest: dict) -> list[str]:
    import pyarrow.parquet as pq

    if "fetches" not in manifest["files"]:
        return []
    return pq.read_table(shards / area / manifest["shard_id"] / "fetches.parquet").column("url").to_pylist()


def _kill_a_worker_mid_window(shards: Path, deadline: float) -> dict:
    """Wait for a claim to write a window with articles, then SIGKILL the process running it (its next
    window is open). Returns that part's manifest."""
    while time.monotonic() < deadline:
        for area in ("incoming", "loaded"):
            for manifest in _manifests(shards, area):
                try:
                    articles = [u for u in _fetched(shards, area, manifest) if "/news/" in u]
                except OSError:          # moved to loaded/ meanwhile
                    continue
                if manifest["part"] not in ("00000", "end") and articles:
                    pid = int(manifest["worker"].split(":")[-1])
                    try:
                        process = psutil.Process(pid)
                        process.send_signal(signal.SIGKILL)
                        process.wait(10)
                    except psutil.NoSuchProcess:
                        continue
                    return manifest
        time.sleep(0.05)
    raise AssertionError("no claim wrote a window in time")


def test_a_worker_killed_mid_window_loses_nothing_after_its_lease(pool: Pool, tmp_path: Path) -> None:
    with demo_hosts(2, 12, latency_s=0.25) as hosts:
        config = fleet_config(tmp_path, hosts, per_host=2, commit_seconds=0.5,
                              fleet={"work_pool": pool.name, "max_claims": 2, "claim_urls": 20, "lease_seconds": 8,
                                     "start_seconds": 180})
        outcome: dict = {}
        thread = threading.Thread(target=lambda: outcome.update(_dispatch(config)), daemon=True)
        thread.start()
        killed = _kill_a_worker_mid_window(tmp_path / "shards", time.monotonic() + 180)
        thread.join(240)
        assert not thread.is_alive() and outcome.get("status") == "completed", pool.logs()
        assert set(_stored(config)) == hosts.article_urls()             # nothing lost
        assert _refetched(hosts, tmp_path / "shards", killed["claim_id"]) == set(), pool.logs()
        killed_hosts = _claim_hosts(config, killed["claim_id"])
        assert {u.split("/")[2] for u in hosts.fetched_twice()} <= killed_hosts   # only the killed claim's hosts
        assert max(hosts.max_in_flight()) <= 2
    assert _claims(config)[killed["claim_id"]] == "expired"


def _claim_hosts(config: Path, claim_id: str) -> set[str]:
    from flows.config import load_config
    from warehouse import Warehouse

    return {h for c in Warehouse(load_config(config).warehouse.path).claims(open_only=False) if c.claim_id == claim_id
            for h in c.hosts}


def _refetched(hosts: Hosts, shards: Path, claim_id: str) -> set[str]:
    """Pages fetched twice that the killed claim did not commit before it died (those may be, nothing else)."""
    from crawler import normalize_url

    committed = set()
    for manifest in _manifests(shards):
        if manifest["claim_id"] == claim_id:
            committed |= set(_fetched(shards, "loaded", manifest))
    return {url for url in hosts.fetched_twice() if normalize_url(url) in committed}
