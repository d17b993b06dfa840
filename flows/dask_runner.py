"""Extraction on Dask, through Prefect's DaskTaskRunner: an opt-in for more cores than one process pool.

Why only extraction: it is the CPU-bound stage (13-60 pages/s per core), it does no I/O, and its
inputs (url, html, fetched_at, rules) and outputs (Article or Rejection) pickle. Fetching stays in
the flow's process (one polite client, one politeness state per host) and so does writing (DuckDB
has one writer). Without Dask, the pipeline extracts in its own worker processes (forked from a fork
server that preloads the extractor, with a CPU budget per page): the right default on one machine.

How: `SIEVE_DASK` chooses the flows' task runner (read when flows/crawl.py is imported):

- unset, empty or `0`: no Dask (Prefect's thread task runner, and the per-run process pool);
- `local` or `1`: a `distributed.LocalCluster` per flow run (`SIEVE_DASK_WORKERS` processes,
  default 2, one thread each). It starts lazily, on the first extraction, in about 8 s;
- `tcp://host:8786`: an existing cluster (`dask scheduler` plus `dask worker tcp://host:8786` on
  each machine, with sieve installed): no start-up cost, workers anywhere.

The pipeline then extracts through `TaskRunnerExecutor` (pipeline/extract_executor.py), a
`concurrent.futures.Executor` whose
`submit(fn, *args)` becomes `task(fn).submit(*args)` on the current flow's task runner: every chunk of
pages is one Prefect task run (visible in the UI, batch-sized, never one per page), executed on a
Dask worker, its result handed back to the flow and never persisted (the HTML is a parameter only).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, InvalidStateError
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect import Task
    from prefect_dask import DaskTaskRunner

ENV_SWITCH = "SIEVE_DASK"
ENV_WORKERS = "SIEVE_DASK_WORKERS"


def dask_setting(environ: Mapping[str, str] | None = None) -> str | None:
    """`None` (off), `"local"` (a LocalCluster per flow run) or a scheduler address."""
    value = (os.environ if environ is None else environ).get(ENV_SWITCH, "").strip()
    if value.lower() in ("", "0", "false", "no", "off"):
        return None
    if value.lower() in ("1", "true", "yes", "on", "local"):
        return "local"
    return value


def dask_task_runner(address: str | None = None, *, n_workers: int = 2) -> DaskTaskRunner:
    """A DaskTaskRunner on an existing cluster (`address`) or on a fresh LocalCluster of worker processes."""
    import logging

    from prefect_dask import DaskTaskRunner

    # distributed logs every worker start and stop at INFO; LocalCluster's silence_logs only covers start-up
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers,
            "processes": True,  # extraction is CPU-bound and holds the GIL
            "threads_per_worker": 1,
            "dashboard_address": None,  # no dashboard port, nothing listening beyond the cluster itself
            "silence_logs": logging.ERROR,
        }
    )


def task_runner_from_env(environ: Mapping[str, str] | None = None) -> DaskTaskRunner | None:
    """The task runner `SIEVE_DASK` asks for, or None for Prefect's default. Cheap: no cluster yet."""
    env = os.environ if environ is None else environ
    setting = dask_setting(env)
    if setting is None:
        return None
    workers = int(env.get(ENV_WORKERS, "2") or 2)
    return dask_task_runner(None if setting == "local" else setting, n_workers=workers)


class TaskRunnerExecutor(Executor):
    """An Executor that runs each call as a Prefect task run on the current flow's task runner.

    Give it to `Pipeline` in place of its process pool; `loop.run_in_executor(executor, fn, *args)`
    then runs `fn(*args)` on a Dask worker when the flow's task runner is a DaskTaskRunner. `fn` must be
    a module-level function (workers import it by name). Call `submit` inside a running flow.
    """

    def __init__(self) -> None:
        self._tasks: dict[Callable[..., Any], Task[..., Any]] = {}

    def _task_for(self, fn: Callable[..., Any]) -> Task[..., Any]:
        if fn not in self._tasks:
            from prefect import task
            from prefect.cache_policies import NO_CACHE

            name = getattr(fn, "__name__", "call").strip("_").replace("_", "-")
            # NO_CACHE and no persistence: pages go in as parameters and articles come back in memory.
            self._tasks[fn] = task(name=name, cache_policy=NO_CACHE, persist_result=False)(fn)
        return self._tasks[fn]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        result: Future[Any] = Future()
        prefect_future = _outside_task_run(self._task_for(fn).submit, *args, **kwargs)

        def settle(done: Any) -> None:
            if result.cancelled():
                return
            try:
                value = done.result()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting side unchanged
                _settle(result, exc=exc)
            else:
                _settle(result, value=value)

        prefect_future.add_done_callback(settle)
        return result


def _outside_task_run(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call as if from the flow itself, not from the task run we may be inside.

    prefect-dask pickles the current context for the worker, and a task run's context holds that
    task's parameters (for `commit-window`, the window), which need not pickle. The extraction task
    then shows in the UI as a task of the flow run.
    """
    from prefect.context import TaskRunContext

    def without_task_run() -> Any:
        # only in this copy of the context; None is what TaskRunContext.get() reports outside a task run
        TaskRunContext.__var__.set(None)  # type: ignore[arg-type]
        return call(*args, **kwargs)

    return contextvars.copy_context().run(without_task_run)


def _settle(future: Future[Any], *, value: Any = None, exc: BaseException | None = None) -> None:
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
    except InvalidStateError:  # cancelled by the waiting side meanwhile
        pass


def extraction_executor_factory() -> Callable[[], Executor] | None:
    """For `StreamOptions.executor`: a factory of TaskRunnerExecutor when `SIEVE_DASK` is on, else None."""
    return TaskRunnerExecutor if dask_setting() is not None else None
