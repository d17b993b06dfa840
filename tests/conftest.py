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
def prefect_harness():
    """One temporary Prefect server and database for the whole session (entering costs ~12 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
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
