"""Flow processes that misbehave (or take their time), for tests/test_flow_process.py: each runs in a real
child process (flows/flow_process.py) and speaks the real protocol; only the flow it runs is one of these,
which the child unpickles by importing this module (kept light: the child's start-up is part of each
test's time). No Prefect server is involved.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.early import CommittedWindow, FlowCall, current_hooks
from flows.flow_process import FRAME_LENGTH, write_message
from flows.prefect_run import TemporaryPrefectServer


def _early_run(call: FlowCall) -> Any:
    """The CLI's run, as the flow process's `RemoteRun` (flows/flow_child.py) hands it to the flow."""
    hooks = current_hooks()
    assert hooks is not None
    run = hooks.take_early(*call.key)
    assert run is not None
    return run


async def _commit(item: Any) -> tuple[int, Any]:
    """The flow's committer, without Prefect: a window committed before is reported, a later one committed."""
    return (item.added, item.counts) if isinstance(item, CommittedWindow) else await item.commit()


@dataclass(frozen=True)
class HangsBeforeAdopting(FlowCall):
    """Never takes the CLI's run, nor ends, nor exits (a flow run stuck being created, a deadlock)."""

    def __call__(self) -> Any:
        return self._flow()

    async def _flow(self) -> None:
        time.sleep(3600)  # blocks its event loop: nothing comes from this process


@dataclass(frozen=True)
class AdoptsThenHangs(FlowCall):
    """Takes the CLI's run and commits its windows, then, once the run ended, neither ends its flow run
    nor exits (a Prefect server that stopped answering, a deadlock)."""

    def __call__(self) -> Any:
        return self._flow()

    async def _flow(self) -> None:
        run = _early_run(self)
        await run.adopt(_commit)
        time.sleep(3600)  # blocks its event loop: nothing more comes from this process


@dataclass(frozen=True)
class EndsThenLingers(FlowCall):
    """Takes the CLI's run, ends its flow run when the run ended, then takes LINGER_S to exit (as
    flushing Prefect may)."""

    LINGER_S = 1.5

    def __call__(self) -> Any:
        return self._flow()

    async def _flow(self) -> None:
        run = _early_run(self)
        await run.adopt(_commit)
        write_message(run.out, ("finished", None))  # what flows/flow_child.py says once the flow returned
        time.sleep(self.LINGER_S)


@dataclass(frozen=True)
class FailsAfterTheRun(FlowCall):
    """Takes the CLI's run, then fails its flow run once the run ended (as Prefect failing to publish the
    summary would); the process then exits as usual."""

    def __call__(self) -> Any:
        return self._flow()

    async def _flow(self) -> None:
        run = _early_run(self)
        await run.adopt(_commit)
        raise RuntimeError("the summary artifact could not be published")


@dataclass(frozen=True)
class SendsJunk(FlowCall):
    """Writes bytes that are not a message down the protocol pipe, then hangs."""

    def __call__(self) -> Any:
        return self._flow()

    async def _flow(self) -> None:
        run = _early_run(self)
        junk = b"print('hi')\n"
        run.out.write(FRAME_LENGTH.pack(len(junk)) + junk)  # its pipe to the CLI (flows/flow_child.py RemoteRun)
        run.out.flush()
        time.sleep(3600)


@dataclass(frozen=True)
class RecordsOnceHandedTheRun(FlowCall):
    """Takes the CLI's run only once the CLI handed it over (the windows it sends with the hand-off are
    waiting), then writes to `params["report"]` what it was given and where its stderr goes once it was
    told to detach, and exits as the flow process does."""

    def __call__(self) -> Any:
        return self._flow()

    async def _flow(self) -> None:
        run = _early_run(self)
        while run._inbox.empty():
            await asyncio.sleep(0.02)
        reported: list[int] = []

        async def commit(item: Any) -> tuple[int, Any]:
            reported.append(item.number)
            return await _commit(item)

        ended = await run.adopt(commit)
        deadline = time.monotonic() + 10
        while os.readlink("/proc/self/fd/2") != os.devnull and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        print("said after the hand-off", file=sys.stderr, flush=True)
        Path(self.params["report"]).write_text(json.dumps({
            "windows": reported, "reported_as_committed": all(isinstance(w, int) for w in reported),
            "status": ended.summary.status, "summary_windows": ended.summary.windows,
            "stderr": os.readlink("/proc/self/fd/2"), "parent": os.getppid()}))


class NeverAnswers(TemporaryPrefectServer):
    """A temporary server that starts (a process that sleeps) and never answers."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(120)"]


class AnswersAfterAWhile(TemporaryPrefectServer):
    """A temporary server that answers /api/health ANSWERS_AFTER_S after its start, and says at what nice its
    session ran meanwhile (in its log)."""

    ANSWERS_AFTER_S = 1.0

    def command(self) -> list[str]:
        serve = f"""
import http.server, time
time.sleep({self.ANSWERS_AFTER_S})
print(open("/proc/self/autogroup").read().split()[-1], flush=True)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("{self.host}", {self.port}), Health).serve_forever()
"""
        return [sys.executable, "-c", serve]
