"""The flow process's own end (flows/flow_process.py says what it is for): import Prefect, wait for the
server, call the flow, and let it adopt the CLI's run as a `RemoteRun`. Run by the CLI (forked from it, or
as `python -m flows.flow_child`), never by hand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import sys
import threading
import time
from typing import IO, Any

from flows.early import EndedRun, FlowCall
from flows.flow_process import (
    FRAME_LENGTH,
    MAX_FRAME_BYTES,
    BrokenFrame,
    error_text,
    read_message,
    reader_for,
    write_message,
)
from flows.prefect_env import flush_prefect, hide_cancel_notice
from outcomes import TransientError


class RemoteWindow:
    """A window the CLI holds; committing it, from the task run, asks the CLI to."""

    __slots__ = ("number", "rows", "_run")

    def __init__(self, number: int, rows: int, run: RemoteRun) -> None:
        self.number, self.rows, self._run = number, rows, run

    def __repr__(self) -> str:
        return f"Window({self.number}, {self.rows} rows, in the sieve process)"

    async def commit(self) -> tuple[int, Any]:
        answer = await self._run.ask(self.number)
        if answer[0] == "done":
            return answer[2], answer[3]
        if answer[0] == "lost":
            raise RuntimeError(f"window {self.number} is no longer in the sieve process")
        _, _, transient, kind, detail = answer
        raise TransientError(kind, detail) if transient else RuntimeError(detail or kind)


class RemoteRun:
    """The CLI's run, for the flow to adopt (flows/early.py `Adoptable`)."""

    def __init__(self, reader: asyncio.StreamReader, out: IO[bytes]) -> None:
        self.out = out
        self.adopted = False
        self._inbox: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
        self._answers: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self._reading = asyncio.ensure_future(self._dispatch(reader))

    async def _dispatch(self, reader: asyncio.StreamReader) -> None:
        try:
            while (message := await read_message(reader)) is not None:
                if message[0] in ("done", "error", "lost") and (answer := self._answers.pop(message[1], None)):
                    answer.set_result(message)
                else:
                    self._inbox.put_nowait(message)
        except BrokenFrame as exc:  # nothing more the CLI says can be read: as if it were gone
            print(f"sieve flow process: the CLI sent {exc}", file=sys.stderr, flush=True)
        for answer in self._answers.values():
            answer.set_result(("lost", None))
        self._inbox.put_nowait(None)

    async def ask(self, number: int) -> tuple[Any, ...]:
        answer = self._answers[number] = asyncio.get_running_loop().create_future()
        write_message(self.out, ("go", number))
        return await answer

    async def adopt(self, commit: Any) -> EndedRun:
        self.adopted = True
        write_message(self.out, ("adopt",))
        while (message := await self._inbox.get()) is not None:
            kind = message[0]
            if kind == "windows":
                for window in message[1]:
                    await self._through(commit, window)
            elif kind == "report":
                await self._through(commit, message[1])
            elif kind == "commit":
                await self._through(commit, RemoteWindow(message[1], message[2], self))
            elif kind == "ended":
                ended, error = message[1], message[2]
                if ended is None:
                    raise RuntimeError(error)
                return ended
        raise RuntimeError("the sieve process went away before its run ended")

    async def _through(self, commit: Any, window: Any) -> None:
        try:
            await commit(window)
            write_message(self.out, ("result", window.number, None))
        except Exception as exc:  # noqa: BLE001  (the task run failed: the CLI's writer is told)
            write_message(self.out, ("result", window.number, error_text(exc)))


def _read_first(fd: int) -> tuple[Any, ...]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = os.read(fd, n - len(data))
            if not chunk:
                raise SystemExit(0)  # the CLI is gone
            data += chunk
        return data

    (length,) = FRAME_LENGTH.unpack(exactly(FRAME_LENGTH.size))
    if length > MAX_FRAME_BYTES:
        raise SystemExit(f"sieve flow process: the CLI sent a frame of {length:,} bytes")
    message: tuple[Any, ...] = pickle.loads(exactly(length))
    return message


async def _run_flow(call: FlowCall, out: IO[bytes]) -> dict[str, int]:
    from flows.early import RunHooks, run_hooks

    run = RemoteRun(await reader_for(os.fdopen(0, "rb", buffering=0)), out)
    hooks = RunHooks()
    hooks.early[call.key] = run
    failure: str | None = None
    try:
        with run_hooks(hooks):
            await call()
    except Exception as exc:  # noqa: BLE001  (said to the CLI, which fails the run with it)
        if type(exc).__name__ != "CancelledRun":  # the run was stopped: the flow run ended Cancelled, as meant
            api = os.environ.get("PREFECT_API_URL", "Prefect's server")
            failure = error_text(exc) if run.adopted else f"the flow run did not start on {api}: {error_text(exc)}"
    write_message(out, ("finished", failure))
    return hooks.task_runs


# With a temporary server, its start (about 4 CPU-s, one core) is what the flow run waits for, and the crawl
# runs meanwhile: Prefect's import here (1.2-1.7 CPU-s) has until the server answers, so it runs at a lower
# priority than the crawl's own process and workers. (The server, in a session of its own, gets its share of
# the CPU before any of them: Linux's autogroups.) Measured, 500 articles on 2 cores, no server, 4 interleaved
# runs each: 5.35 s (5.34-5.40) against 5.49 s (5.37-5.74) at the normal priority; `--max-pages 1`: no change.
IMPORT_NICENESS = 10


def _import_prefect(*, nice: int) -> None:
    """Import Prefect (flows/crawl.py), in a thread of its own at `nice` (Linux sets a nice value per
    thread: the flow run, in the main thread, keeps the normal priority; Prefect starts no thread at import)."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            if nice:
                try:
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
                except (OSError, AttributeError):
                    pass
            import fastapi.encoders  # noqa: F401  (Prefect imports it when it creates the flow run)

            import flows.crawl  # noqa: F401  (Prefect: the slow part of start-up)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the main thread)
            failure.append(exc)

    thread = threading.Thread(target=work, name="sieve-import-prefect")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def child_main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else prints goes to stderr, which the CLI relays: stdout is the protocol
    _, call, health_timeout, temporary = _read_first(0)
    api_url = os.environ.get("PREFECT_API_URL", "")
    try:
        _import_prefect(nice=IMPORT_NICENESS if temporary else 0)
        hide_cancel_notice()
        if health_timeout is not None:
            from flows.prefect_run import wait_until_healthy

            wait_until_healthy(api_url, time.monotonic() + health_timeout)
    except Exception as exc:  # noqa: BLE001
        write_message(out, ("finished", f"Prefect is not available: {error_text(exc)}"))
        os._exit(1)
    write_message(out, ("ready",))
    task_runs = asyncio.run(_run_flow(call, out))
    try:
        flush_prefect()
        if temporary:
            from flows.prefect_run import wait_recorded

            if not wait_recorded(api_url, task_runs):
                logging.getLogger("sieve").warning("Prefect's temporary server had not recorded every task run in 5 s")
    finally:
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    child_main()
