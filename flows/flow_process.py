"""A CLI run's Prefect flow run, in a child process of its own (the "flow process").

Why: importing Prefect and running its engine cost the CLI 1.3-1.5 CPU-s of a 3 s crawl of 500 pages,
all under the crawl's GIL (bench/findings_race.md). In a child they run on the other core while the CLI
fetches. The child imports Prefect, waits for the server to answer, and calls the same flow with the
same parameters (a `FlowCall`); the flow adopts the run the CLI started (flows/early.py) as a
`RemoteRun`:

- the windows the CLI committed meanwhile are reported as `commit-window` task runs;
- from then on a window commits *inside* its task run: the task asks the CLI to commit it ("go") and
  gets its counts back, so Prefect retrying a TransientError retries the real commit;
- when the run ends, the CLI sends what the flow needs (`EndedRun`); the flow publishes the summary
  artifact and ends in the run's state (Cancelled after a Ctrl-C);
- then the child flushes Prefect's logs and events, waits (bounded) until a temporary server has
  recorded every task run, stops that server (it started it: the server is its child) and exits; the
  CLI has printed its summary meanwhile.

If the child fails, dies or hangs (it has a bounded time to take the run and to end its flow run, then is
killed), the CLI commits the windows itself and fails the run, saying why: what was fetched is never lost
to Prefect's absence. The child runs in its own process group (the terminal's Ctrl-C
reaches the CLI, which stops the run; the child then records it as Cancelled) and ends when the CLI is
gone (it reads the end of its stdin: flows/flow_child.py), unless it was handed the run to record.

Handing off (`hand_off`): with Prefect's temporary server, which the child starts and owns, a short run
is often over before the server answers (5-7 s here). The CLI does not wait for it: it sends the child the
windows it committed and how the run ended, prints its summary and exits with the run's code; the child
records the flow run after it (its log in PREFECT_HOME, removed once all is recorded) and stops the
server. The warehouse, committed before the hand-off, is the record the exit code speaks for.

Messages are pickled, length-prefixed frames on the child's stdin and stdout; anything else the child
prints goes to its stderr, which the CLI relays to its own. Both ends are this program: the CLI's is
here (`FlowProcess`), the child's in flows/flow_child.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flows.early import CommittedWindow, EndedRun, FlowCall, HandOverCommit
from flows.flow_fork import ForkedChild
from outcomes import SieveError, TransientError

if TYPE_CHECKING:
    from flows.prefect_run import TemporaryPrefectServer

FRAME_LENGTH = struct.Struct(">I")
# Messages are small: the largest, the windows committed before the flow run took over, pickles to about
# 50 bytes a window. A longer length means the stream is not ours (say, a library printed to the real stdout).
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Read when used, not when imported (a test shortens them to see a hung flow process given up on).
# Beyond the temporary server's start (`health_timeout`), how long the flow process may take to take the
# run (or is killed): importing Prefect takes 1-2 s and creating the flow run well under one, but Prefect's
# client retries a busy server for about a minute, and its own error then says more than this timeout.
ADOPT_TIMEOUT_S = 120.0
FINISH_TIMEOUT_S = 60.0  # after the run ended, how long the flow process may take to end its flow run (or is killed)
EXIT_TIMEOUT_S = 20.0  # then, to flush Prefect (5 + 5 s) and wait for the server to record (5 s)


def frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME_LENGTH.pack(len(data)) + data


def write_message(stream: IO[bytes], message: tuple[Any, ...]) -> bool:
    """Blocking: messages are small and the other end reads at once. False if it is gone."""
    try:
        stream.write(frame(message))
        stream.flush()
        return True
    except (OSError, ValueError):
        return False


class BrokenFrame(ValueError):
    """What came down the pipe is not a message of ours: the other end cannot be trusted to go on."""


async def read_message(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, None when the other end closed its pipe; BrokenFrame for anything else."""
    try:
        length = frame_length(await reader.readexactly(FRAME_LENGTH.size))
        data = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return unframe(data)


def frame_length(head: bytes) -> int:
    """The length a frame's head announces; BrokenFrame past MAX_FRAME_BYTES (before any of it is read)."""
    (length,) = FRAME_LENGTH.unpack(head)
    if length > MAX_FRAME_BYTES:
        raise BrokenFrame(f"a frame of {length:,} bytes (at most {MAX_FRAME_BYTES:,})")
    return int(length)


def unframe(data: bytes) -> tuple[Any, ...]:
    """A frame's body as a message; BrokenFrame for anything that is not one."""
    try:
        message = pickle.loads(data)
    except Exception as exc:  # noqa: BLE001  (any unpickling failure says the same: not our message)
        raise BrokenFrame(f"a frame that is not a message: {type(exc).__name__}") from exc
    if not isinstance(message, tuple) or not message:
        raise BrokenFrame(f"a frame holding {type(message).__name__}, not a message")
    return message


async def reader_for(stream: IO[bytes]) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    return reader


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


# ---- the CLI's end --------------------------------------------------------------------------------


class FlowProcess:
    """The flow process seen from the CLI. Spawn it as early as possible (it starts importing Prefect at
    once); `attach()` in the event loop; the writer commits through `commit` once the flow took the run."""

    def __init__(
        self,
        call: FlowCall,
        *,
        server: TemporaryPrefectServer | None,
        relay: Callable[[str], None],
        may_outlive: bool | None = None,
    ):
        # Forked while the CLI has one thread, the child starts with the CLI's modules already imported
        # (pydantic, httpx, rich: 0.2-0.3 CPU-s it does not spend again while the temporary server's start
        # needs the CPU). With other threads running (`sieve demo` serves its site), a fresh interpreter.
        self.process: subprocess.Popen[bytes] | ForkedChild
        if hasattr(os, "fork") and threading.active_count() == 1:
            self.process = ForkedChild()
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flows.flow_child"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,  # the terminal's Ctrl-C reaches the CLI only (see ForkedChild)
            )
        self.spawned_at = time.monotonic()
        self.health_timeout = server.startup_timeout if server is not None else None
        # the child starts the temporary server (it is the server's parent: the server dies with it)
        self.server = server
        self.server_pid: int | None = None
        # whether a run over before the flow run took it is handed to the child to record (`hand_off`)
        self.may_outlive = server is not None if may_outlive is None else may_outlive
        self.detached = False
        self.recording_log: Path | None = None  # where it logs once handed the run (None: nowhere)
        assert self.process.stdin is not None and self.process.stderr is not None
        write_message(self.process.stdin, ("call", call, server))
        threading.Thread(target=self._relay, args=(self.process.stderr, relay), daemon=True).start()
        self.ready = False
        self.gone = False
        self.committer: HandOverCommit | None = None
        self._adopted: asyncio.Event | None = None
        self._finished: asyncio.Future[str | None] | None = None
        self._results: dict[int, asyncio.Future[None]] = {}
        self._windows: dict[int, Any] = {}  # number -> the Window the flow run is to commit
        self._outcomes: dict[int, tuple[int, Any]] = {}
        self._errors: dict[int, BaseException] = {}
        self._committing: set[int] = set()
        self._listening: asyncio.Task[None] | None = None

    @staticmethod
    def _relay(stream: IO[bytes], relay: Callable[[str], None]) -> None:
        for line in stream:  # a thread: it outlives the event loop, so the child never blocks on a full pipe
            relay(line.decode("utf-8", "replace").rstrip())

    async def attach(self, committer: HandOverCommit) -> None:
        assert self.process.stdout is not None
        self.committer = committer
        self._adopted = asyncio.Event()
        self._finished = asyncio.get_running_loop().create_future()
        reader = await reader_for(self.process.stdout)
        self._listening = asyncio.ensure_future(self._listen(reader))

    @property
    def adopted(self) -> bool:
        return self._adopted is not None and self._adopted.is_set()

    async def wait_adopted(self) -> None:
        assert self._adopted is not None
        await self._adopted.wait()

    def adoption_overdue(self) -> str | None:
        """Why the flow process is given up on before it took the run (it is killed then): it had the
        server's start and ADOPT_TIMEOUT_S more. None while it has time, or once it took the run."""
        limit = (self.health_timeout or 0.0) + ADOPT_TIMEOUT_S
        if self.adopted or time.monotonic() - self.spawned_at <= limit:
            return None
        self.kill()
        return f"the process running the Prefect flow run did not take the run within {limit:g} s; it was killed"

    async def until_finished(self) -> str | None:
        """After the run ended: how its flow run ended (`finished`). One that does not end in FINISH_TIMEOUT_S
        is killed then: it had its time, and `wait_exit` is for a flow process flushing Prefect, not a hung one."""
        timeout = FINISH_TIMEOUT_S
        await asyncio.wait({self.finished}, timeout=timeout)
        if self.finished.done():
            return self.finished.result()
        self.kill()
        return f"the flow run did not end within {timeout:g} s of the run; its process was killed"

    @property
    def finished(self) -> asyncio.Future[str | None]:
        """The flow run's end: None when it ended as the run did, else why it failed (or never started).
        Wait on it with asyncio.wait (never cancel it)."""
        assert self._finished is not None
        return self._finished

    def send(self, message: tuple[Any, ...]) -> None:
        assert self.process.stdin is not None
        if not self.gone and not write_message(self.process.stdin, message):
            self._lost("the flow process stopped reading")

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        try:
            await self._dispatch(reader)
        except BrokenFrame as exc:  # its stream is corrupt: nothing more it says can be read, so it goes
            self.kill()
            self._lost(f"the process running the Prefect flow run sent {exc}")
            return
        try:
            code: int | None = self.process.wait(timeout=1.0)  # its pipe closed: it is exiting
        except subprocess.TimeoutExpired:
            code = None
        self._lost(f"the process running the Prefect flow run exited{f' with code {code}' if code is not None else ''}")

    async def _dispatch(self, reader: asyncio.StreamReader) -> None:
        while (message := await read_message(reader)) is not None:
            kind = message[0]
            if kind == "ready":
                self.ready = True
            elif kind == "server":
                self.server_pid = message[1]
            elif kind == "adopt" and not self.detached:  # the flow run exists and takes the run: windows go to it
                assert self.committer is not None and self._adopted is not None
                self.send(("windows", self.committer.hand_over(self.commit)))
                self._adopted.set()
            elif kind == "go":
                asyncio.ensure_future(self._commit_for_flow(message[1]))
            elif kind == "result":
                self._settle(message[1], message[2])
            elif kind == "finished":
                self._finish(message[1])

    def _finish(self, failure: str | None) -> None:
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(failure)

    def _lost(self, why: str) -> None:
        """The child is gone: what it was to commit is committed here, and its run fails (the caller)."""
        if self.gone:
            return
        self.gone = True
        self._finish(why)  # unless the flow run had already said how it ended
        for number in list(self._results):
            if number in self._outcomes or number in self._errors:
                self._settle(number, None)
            elif number in self._windows and number not in self._committing:
                asyncio.ensure_future(self._commit_here(number))

    async def commit(self, item: Any) -> tuple[int, Any]:
        """The writer's committer once the flow run took the run: a Window commits in its task run, a
        window committed meanwhile (`CommittedWindow`) is reported as one."""
        if self.gone:
            return (item.added, item.counts) if isinstance(item, CommittedWindow) else await item.commit()
        number = item.number
        result = self._results[number] = asyncio.get_running_loop().create_future()
        if isinstance(item, CommittedWindow):
            self._outcomes[number] = (item.added, item.counts)
            self.send(("report", item))
        else:
            self._windows[number] = item
            self.send(("commit", number, item.rows))
        try:
            await result
        finally:
            self._results.pop(number, None)
            self._windows.pop(number, None)
        if number in self._errors:
            raise self._errors.pop(number)
        return self._outcomes.pop(number)

    async def _commit_for_flow(self, number: int) -> None:
        window = self._windows.get(number)
        if window is None or number in self._outcomes:  # a retry of a window already committed: say so
            self.send(("done", number, *self._outcomes[number]) if number in self._outcomes else ("lost", number))
            return
        self._committing.add(number)
        try:
            self._outcomes[number] = await window.commit()
            self._errors.pop(number, None)
            self.send(("done", number, *self._outcomes[number]))
        except Exception as exc:  # noqa: BLE001  (the task run fails or retries; the writer gets it after)
            self._errors[number] = exc
            transient = isinstance(exc, TransientError)
            kind, detail = (exc.kind, exc.detail) if isinstance(exc, SieveError) else ("", error_text(exc))
            self.send(("error", number, transient, kind, detail))
        finally:
            self._committing.discard(number)
        if self.gone:
            self._settle(number, None)

    async def _commit_here(self, number: int) -> None:
        try:
            self._outcomes[number] = await self._windows[number].commit()
        except Exception as exc:  # noqa: BLE001  (handed to the writer, which retries or fails the run)
            self._errors[number] = exc
        self._settle(number, None)

    def _settle(self, number: int, failure: str | None) -> None:
        result = self._results.get(number)
        if result is None or result.done():
            return
        if failure is not None and number not in self._errors:
            self._errors[number] = RuntimeError(f"the commit-window task run failed: {failure}")
        result.set_result(None)

    def hand_off(self, ended: EndedRun | None, error: str | None) -> bool:
        """The run ended before the flow run took it: hand the child what it needs to record it (the windows
        committed, how the run ended) and let it outlive this process. False if the child is gone."""
        assert self.committer is not None and self.may_outlive
        log = self.server.recording_log(self.process.pid) if self.server is not None else None
        self.send(("windows", self.committer.hand_over(self.commit)))
        self.send(("ended", ended, error))
        self.send(("detach", str(log) if log is not None else None))
        self.detached, self.recording_log = not self.gone, log
        return self.detached

    def kill(self) -> None:
        """Kill the child unless it was handed the run; a temporary server not yet answering too (it would
        finish a migration before it honoured the SIGTERM it gets when the child dies)."""
        if self.detached:
            return
        if self.process.poll() is None:
            self.process.kill()
        if self.server_pid is not None and not self.adopted:
            try:
                os.killpg(self.server_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def wait_exit(self, timeout: float | None = None) -> None:
        """After the summary: let the child flush Prefect and end (bounded: EXIT_TIMEOUT_S unless
        `timeout`), then make sure it is gone."""
        if timeout is None:
            timeout = EXIT_TIMEOUT_S
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logging.getLogger("sieve").warning("the flow process did not end in %.0f s; stopped", timeout)
            self.kill()
