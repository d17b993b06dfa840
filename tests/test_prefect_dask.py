"""Extraction on Dask worker processes through Prefect's DaskTaskRunner (one LocalCluster, ~8 s).

The flow calls the executor exactly as `pipeline.extract_executor.ExecutorExtraction` calls it
(`loop.run_in_executor(pool, extract_chunk, chunk, rules)`), so switching the pipeline to Dask is a
change of executor, not of code path.
"""
from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest

from crawler import decode_html
from flows.config import load_config
from flows.dask_runner import (
    TaskRunnerExecutor,
    dask_setting,
    dask_task_runner,
    extraction_executor_factory,
    task_runner_from_env,
)
from pipeline.extract_worker import extract_chunk
from tests.conftest import ROOT


def worker_pid() -> int:
    """Run on a worker: a module-level function, so Dask workers import it by name."""
    return os.getpid()


def test_the_switch_reads_off_local_or_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dask_setting({}) is None
    assert dask_setting({"SIEVE_DASK": "0"}) is None
    assert dask_setting({"SIEVE_DASK": "1"}) == "local"
    assert dask_setting({"SIEVE_DASK": "local"}) == "local"
    assert dask_setting({"SIEVE_DASK": "tcp://127.0.0.1:8786"}) == "tcp://127.0.0.1:8786"
    assert task_runner_from_env({}) is None
    remote = task_runner_from_env({"SIEVE_DASK": "tcp://127.0.0.1:8786"})
    assert remote is not None and remote.address == "tcp://127.0.0.1:8786"   # no cluster is started here
    local = task_runner_from_env({"SIEVE_DASK": "local", "SIEVE_DASK_WORKERS": "3"})
    assert local is not None and local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"]
    monkeypatch.delenv("SIEVE_DASK", raising=False)
    assert extraction_executor_factory() is None
    monkeypatch.setenv("SIEVE_DASK", "local")
    assert extraction_executor_factory() is TaskRunnerExecutor


def test_extraction_runs_on_dask_worker_processes(prefect_harness, demo_site) -> None:
    import threading

    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    rules = load_config(ROOT / "config.yaml").sources["demo"].rules
    fetched_at = datetime(2023, 6, 1, 12, 0, tzinfo=UTC)
    pages = []
    for number in range(1, 7):
        path = demo_site.article_path(number)
        status, body, content_type = demo_site.render(path)
        assert status == 200
        pages.append((f"http://127.0.0.1:8765{path}", decode_html(body, content_type).text, fetched_at))
    chunks = [pages[0:2], pages[2:4], pages[4:6]]

    # Even from inside an async task whose parameters cannot be pickled, the extraction can be submitted.
    @task(name="batch-probe", cache_policy=NO_CACHE, persist_result=False)
    async def batch(live: object, executor: TaskRunnerExecutor) -> tuple[list, set[int]]:
        loop = asyncio.get_running_loop()
        outputs = await asyncio.gather(*(loop.run_in_executor(executor, extract_chunk, c, rules) for c in chunks))
        pids = await asyncio.gather(*(loop.run_in_executor(executor, worker_pid) for _ in range(4)))
        return outputs, set(pids)

    @flow(name="dask-extract-probe", task_runner=dask_task_runner(n_workers=2), persist_result=False)
    async def extract_on_dask() -> tuple[list, set[int]]:
        return await batch(threading.Lock(), TaskRunnerExecutor())

    outputs, pids = asyncio.run(extract_on_dask())

    assert os.getpid() not in pids, "the work ran in the flow's own process, not on Dask workers"
    local = [extract_chunk(chunk, rules) for chunk in chunks]
    assert [[url for url, _ in out] for out in outputs] == [[url for url, _ in out] for out in local]
    on_dask = [result for out in outputs for _, result in out]
    here = [result for out in local for _, result in out]
    assert [getattr(r, "text", None) for r in on_dask] == [getattr(r, "text", None) for r in here]
    assert sum(1 for r in on_dask if getattr(r, "text", None)) >= 4, "the demo articles should extract"
