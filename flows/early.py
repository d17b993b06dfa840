"""A run that starts before Prefect is ready, and the hooks a caller hands the flows it starts.

`import prefect` costs 1-2 s and Prefect's temporary server 3-4 s more before it answers; the pipeline
needs neither to fetch. So the CLI builds the run's plan (flows/pipeline.py) and starts it at once
(`EarlyRun`), while its flow run comes up in a child process (flows/flow_process.py), which calls the
flow with the same parameters; the flow adopts the run instead of building its own (`RemoteRun`):

- until then the writer commits its windows itself (each one transaction, as always: crash safety
  does not wait for Prefect), and keeps only a small record of each (`CommittedWindow`);
- the flow run reports those windows as `commit-window` task runs first (the task sees the window
  committed and returns its counts), and from then on every window commits *in* a task run of the
  flow (`HandOverCommit` hands each to the flow's committer);
- the flow waits for the run to end (`EndedRun`), publishes its summary artifact, and ends in the
  run's state. If Prefect never comes up, the CLI stops the run (what was fetched is committed) and
  fails it.

This module never imports Prefect; flows/crawl.py re-exports `RunHooks` and `run_hooks`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flows.pipeline import Pipeline, RunPlan
    from pipeline.run import ProgressFn
    from pipeline.spec import StopSignal, StreamOptions
    from pipeline.summary import RunSummary
    from pipeline.write import Window
    from warehouse import ExtractionCounts


@dataclass(frozen=True)
class FlowCall:
    """A flow of flows/crawl.py by name and its parameters: what the CLI runs, in-process or in the
    flow process (it is pickled there, so it holds plain values only)."""

    flow: str  # "crawl", "backfill" or "reextract": also the kind of the run it does
    params: dict[str, Any]

    @property
    def key(self) -> tuple[str, str | None]:
        """(kind, source): the early run this call's flow adopts (`RunHooks.take_early`)."""
        return self.flow, self.params.get("source")

    def __call__(self) -> Coroutine[Any, Any, Any]:
        import flows.crawl

        flow = getattr(flows.crawl, self.flow)
        return flow(**self.params)


@dataclass(frozen=True)
class EndedRun:
    """What a flow needs of a run once it ended: its summary and how it ended (picklable)."""

    kind: str
    source: str
    summary: RunSummary
    stopped: bool  # asked to stop (Ctrl-C): the flow run ends Cancelled
    warehouse: str
    log_line: str = ""

    @classmethod
    def of(cls, plan: RunPlan) -> EndedRun:
        p = plan.pipeline
        return cls(plan.kind, plan.source, p.summary, p.stop.requested, str(p.warehouse.path), plan.log_line)


class Adoptable(Protocol):
    """A run started for a flow before its flow run existed (flows/flow_child.py `RemoteRun`)."""

    async def adopt(self, commit: Committer) -> EndedRun: ...


@dataclass
class RunHooks:
    """What the caller of a flow (the CLI, a benchmark) gives the runs it starts in this process."""

    progress: ProgressFn | None = None
    stop: StopSignal | None = None
    options: StreamOptions | None = None
    summaries: list[RunSummary] = field(default_factory=list)  # every run's summary, as it ended
    early: dict[tuple[str, str | None], Adoptable] = field(default_factory=dict)  # (kind, source) -> started run
    task_runs: dict[str, int] = field(default_factory=dict)  # flow run id -> commit-window task runs it ran

    def take_early(self, kind: str, source: str) -> Adoptable | None:
        """The run the caller started for this flow, if any (once: a second flow builds its own)."""
        return self.early.pop((kind, source), None)


_HOOKS: contextvars.ContextVar[RunHooks | None] = contextvars.ContextVar("sieve_run_hooks", default=None)


@contextmanager
def run_hooks(hooks: RunHooks) -> Iterator[RunHooks]:
    """`with run_hooks(RunHooks(progress=...)): asyncio.run(crawl(...))`: the flows started inside see them."""
    token = _HOOKS.set(hooks)
    try:
        yield hooks
    finally:
        _HOOKS.reset(token)


def current_hooks() -> RunHooks | None:
    return _HOOKS.get()


class CommittedWindow:
    """What is kept of a window committed before its flow run existed: enough for its task run to
    report it (its number, rows and counts), none of its rows (pages stay out of memory)."""

    __slots__ = ("number", "rows", "added", "counts")

    def __init__(self, window: Window, added: int, counts: ExtractionCounts) -> None:
        self.number, self.rows, self.added, self.counts = window.number, window.rows, added, counts

    def __repr__(self) -> str:
        return f"CommittedWindow({self.number}, {self.rows} rows, committed before the flow run)"


# a coroutine function, not any awaitable: the commit runs as a task in the flow's context (create_task)
Committer = Callable[[Any], Coroutine[Any, Any, tuple[int, Any]]]


class HandOverCommit:
    """The writer's committer for an early run: commits windows itself until a flow run takes over,
    then hands every window to the flow's committer, run in the flow's context (so each is a task run
    of that flow run, not a stray task run of its own)."""

    def __init__(self) -> None:
        self._flow: tuple[Committer, contextvars.Context] | None = None
        self.before: list[CommittedWindow] = []

    async def __call__(self, window: Window) -> tuple[int, Any]:
        item: Window | CommittedWindow = window
        if self._flow is None:
            added, counts = await window.commit()
            item = CommittedWindow(window, added, counts)
            if self._flow is None:
                self.before.append(item)
                return added, counts
            # the flow took over while this window was committing: it is reported as the others were
        commit, context = self._flow
        run_in = context.copy()
        return await asyncio.get_running_loop().create_task(run_in.run(commit, item), context=run_in)

    def hand_over(self, commit: Committer) -> list[CommittedWindow]:
        """From now on windows go to `commit`, in the caller's (the flow's) context; returns the windows
        committed so far, for the flow to report."""
        self._flow = (commit, contextvars.copy_context())
        before, self.before = self.before, []
        return before


class EarlyRun:
    """A plan started before its flow run, in the CLI. `start()` in the event loop."""

    def __init__(self, plan: RunPlan, committer: HandOverCommit) -> None:
        self.plan = plan
        self.committer = committer
        self.task: asyncio.Task[RunSummary] | None = None

    @property
    def pipeline(self) -> Pipeline:
        return self.plan.pipeline

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.plan.run())

    async def abandon(self, reason: str) -> None:
        """No flow run will take this run (Prefect failed): stop it, commit what it has, let it end
        `failed` with `reason`."""
        assert self.task is not None
        self.pipeline.stop.set(failure=reason)
        await asyncio.gather(self.task, return_exceptions=True)
        if not self.task.cancelled() and self.task.exception() is None:  # it had ended on its own: completed
            await self.pipeline.mark_failed(reason)

    async def flow_run_failed(self, failure: str) -> str:
        """The run ended, but its flow run then failed or did not end (`failure`): as when no flow run took
        the run, the run is `failed`, its row saying why and that nothing it fetched was lost. Returns that."""
        reason = (
            f"the Prefect flow run failed after the run ended {self.pipeline.summary.status} "
            f"(all it fetched is committed): {failure}"
        )
        await self.pipeline.mark_failed(reason)
        return reason
