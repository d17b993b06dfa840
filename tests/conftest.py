"""Shared fixtures: quiet offline Prefect, the demo aggregator on 127.0.0.1, temporary configs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

# Before anything imports Prefect: no telemetry, a patient start-up on slow CI machines, quiet logs.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from demo import DemoServer, DemoSite  # noqa: E402
from tests.faultserver import fault_server  # noqa: E402,F401  (fixture for every test module)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect database migrated once per test run and copied by every server the tests start.

    Migrating an empty database takes 12 CPU-s (16 s alone, 25 s beside the other worker); each xdist
    worker's harness and `sieve serve`'s test did it for themselves. The first worker to take the lock
    migrates, in a child process (the server's modules stay out of the workers); the others wait for it.
    """
    import fcntl
    import subprocess
    import sys
    from importlib.metadata import version

    # xdist's workers share the parent of their base temp; without xdist it is the user's pytest dir,
    # so the copy is kept across runs, named by the Prefect version that migrated it
    shared = tmp_path_factory.getbasetemp().parent
    template = shared / f"prefect-{version('prefect')}.db"
    with open(shared / "prefect-database.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            partial = template.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            migrate = ("import asyncio; from prefect.server.database import provide_database_interface; "
                       "asyncio.run(provide_database_interface().create_db())")
            env = dict(os.environ, PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{partial}")
            subprocess.run([sys.executable, "-c", migrate], env=env, check=True, timeout=300)
            partial.rename(template)
    return template


def copy_prefect_database(template: Path, to: Path) -> Path:
    """`to` (a file) as a copy of the migrated database; returns it."""
    import shutil

    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, to)
    return to


@pytest.fixture(scope="session")
def prefect_harness(prefect_database: Path, tmp_path_factory: pytest.TempPathFactory):
    """One temporary Prefect server for the whole session, on a copy of the migrated database
    (entering takes about 6 s; on an empty database it took 24 s)."""
    from unittest import mock

    from prefect.settings import (
        PREFECT_API_BLOCKS_REGISTER_ON_START,
        PREFECT_API_DATABASE_MIGRATE_ON_START,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    # Prefect's harness puts its database in a directory of its own, from mkdtemp(); it is handed one
    # holding the copy. The assertion below fails if a later Prefect stops reading the database there.
    home = tmp_path_factory.mktemp("prefect-harness")
    copy_prefect_database(prefect_database, home / "prefect-test.db")
    # The copy is at this Prefect's head already, and no test uses block types: checking the one and
    # registering the other took about 3 s and 4 s of the server's start (its child gets these settings).
    skip = {PREFECT_API_DATABASE_MIGRATE_ON_START: False, PREFECT_API_BLOCKS_REGISTER_ON_START: False}
    with mock.patch("prefect.testing.utilities.mkdtemp", return_value=str(home)), temporary_settings(updates=skip):
        with prefect_test_harness(server_startup_timeout=180):
            assert str(home) in PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
            yield


@pytest.fixture(scope="session")
def demo_site() -> DemoSite:
    return DemoSite(60)


@pytest.fixture
def demo_server(demo_site: DemoSite):
    with DemoServer(demo_site) as server:
        yield server


def write_config(tmp_path: Path, base_url: str, *, demo_overrides: dict | None = None, crawl: dict | None = None) -> Path:
    """A config whose demo source points at `base_url` and whose warehouse lives in tmp_path."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["warehouse"]["path"] = str(tmp_path / "sieve.duckdb")
    config["crawl"].update({"delay_seconds": 0.0, "retries": 1, "timeout_seconds": 10})
    config["crawl"].update(crawl or {})
    demo = config["sources"]["demo"]
    demo["start_urls"] = [f"{base_url}/list/1.html"]
    demo.update(demo_overrides or {})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
