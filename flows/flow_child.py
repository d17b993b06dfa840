"""The flow process's own end (flows/flow_process.py says what it is for): start the temporary server if
the run has one, import Prefect, wait for the server, call the flow, and let it adopt the CLI's run as a
`RemoteRun`. Run by the CLI (forked from it, or as `python -m flows.flow_child`), never by hand.

A thread reads the CLI's messages from the start (`CliInbox`). The end of its stdin means the CLI is gone:
the child stops its server and exits at once, as if it had died with the CLI, unless the CLI handed it the
run first ("detach"): then it writes to its log instead of the CLI's stderr, and records the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from flows.early import EndedRun, FlowCall
from flows.flow_process import FRAME_LENGTH, BrokenFrame, error_text, frame_length, unframe, write_message
from flows.prefect_env import flush_prefect, hide_cancel_notice
from outcomes import TransientError

if TYPE_CHECKING:
    from flows.prefect_run import TemporaryPrefectServer


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


class CliInbox:
    """The CLI's messages, read from fd 0 by a thread of their own from the start, whatever the main
    thread is doing (importing Prefect, waiting for the server, a flow run): so the end of the pipe is
    seen at once, and a "detach" is honoured before the CLI exits. Messages wait here until the flow's
    event loop takes them (`bind`), in order."""

    def __init__(self, fd: int, *, on_gone: Callable[[], None]) -> None:
        self.detached = threading.Event()
        self._fd, self._on_gone = fd, on_gone
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, ...] | None] = []
        self._sink: Callable[[tuple[Any, ...] | None], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        threading.Thread(target=self._read, name="sieve-cli-inbox", daemon=True).start()

    def _read(self) -> None:
        try:
            while (message := read_frame(self._fd)) is not None:
                if message[0] == "detach":
                    _write_to_log(message[1])
                    self.detached.set()
                else:
                    self._deliver(message)
        except BrokenFrame as exc:  # nothing more the CLI says can be read: as if it were gone
            print(f"sieve flow process: the CLI sent {exc}", file=sys.stderr, flush=True)
        if not self.detached.is_set():
            self._on_gone()
        self._deliver(None)

    def _deliver(self, message: tuple[Any, ...] | None) -> None:
        with self._lock:
            if self._loop is None or self._sink is None:
                self._pending.append(message)
                return
            loop, sink = self._loop, self._sink
        try:
            loop.call_soon_threadsafe(sink, message)
        except RuntimeError:  # the flow's loop is closed: nobody listens any more
            pass

    def bind(self, sink: Callable[[tuple[Any, ...] | None], None]) -> None:
        """From the flow's event loop: `sink` gets every message so far, then each as it comes."""
        with self._lock:
            self._loop, self._sink = asyncio.get_running_loop(), sink
            pending, self._pending = self._pending, []
        for message in pending:
            sink(message)


def _write_to_log(path: str | None) -> None:
    """After a hand-off the CLI is gone: what this process prints goes to its log (or nowhere)."""
    fd = os.open(path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)


class RemoteRun:
    """The CLI's run, for the flow to adopt (flows/early.py `Adoptable`)."""

    def __init__(self, inbox: CliInbox, out: IO[bytes]) -> None:
        self.out = out
        self.adopted = False
        self._inbox: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
        self._answers: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        inbox.bind(self._dispatch)

    def _dispatch(self, message: tuple[Any, ...] | None) -> None:
        if message is None:  # the CLI is gone (or handed the run over and closed its end)
            for waiting in self._answers.values():
                if not waiting.done():
                    waiting.set_result(("lost", None))
            self._answers.clear()
            self._inbox.put_nowait(None)
        elif message[0] in ("done", "error", "lost") and (answer := self._answers.pop(message[1], None)):
            answer.set_result(message)
        else:
            self._inbox.put_nowait(message)

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


def _exactly(fd: int, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None  # the CLI is gone (mid-frame or not)
        data += chunk
    return data


def read_frame(fd: int) -> tuple[Any, ...] | None:
    """Blocking: the next message on `fd`, None at its end; BrokenFrame for anything not ours."""
    if (head := _exactly(fd, FRAME_LENGTH.size)) is None:
        return None
    if (data := _exactly(fd, frame_length(head))) is None:
        return None
    return unframe(data)


async def _run_flow(call: FlowCall, inbox: CliInbox, out: IO[bytes]) -> tuple[dict[str, int], str | None]:
    from flows.early import RunHooks, run_hooks

    run = RemoteRun(inbox, out)
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
    if not write_message(out, ("finished", failure)) and failure is not None:
        print(f"sieve flow process: the flow run failed: {failure}", file=sys.stderr, flush=True)
    return hooks.task_runs, failure


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
    first = read_frame(0)
    if first is None:
        os._exit(0)  # the CLI is gone
    _, call, server = first
    server = _start(server, out)

    def gone() -> None:  # the CLI is gone and handed nothing over, or Prefect never came up: stop and end
        if server is not None:
            server.stop()
        os._exit(1)

    inbox = CliInbox(0, on_gone=gone)
    try:
        _import_prefect(nice=IMPORT_NICENESS if server is not None else 0)
        hide_cancel_notice()
        if server is not None:
            server.wait_healthy()
    except Exception as exc:  # noqa: BLE001
        said = f"Prefect is not available: {error_text(exc)}"
        if not write_message(out, ("finished", said)) or inbox.detached.is_set():  # handed the run: the log says why
            print(f"sieve flow process: the run was not recorded: {said}", file=sys.stderr, flush=True)
        gone()
    write_message(out, ("ready",))
    code = 1
    try:
        task_runs, failure = asyncio.run(_run_flow(call, inbox, out))
        flush_prefect()
        code = 0
        if server is not None and not server.wait_recorded(task_runs):
            logging.getLogger("sieve").warning("Prefect's temporary server had not recorded every task run in 5 s")
        elif failure is None and server is not None and inbox.detached.is_set():
            # a hand-off recorded in full: its log has nothing to say (one that failed keeps it, saying why)
            server.recording_log(os.getpid()).unlink(missing_ok=True)
    except BaseException:  # noqa: BLE001  (said on stderr, or in the log after a hand-off; the exit code says 1)
        import traceback

        traceback.print_exc()
    finally:
        if server is not None:
            server.stop()
        sys.stderr.flush()
        os._exit(code)


def _start(server: TemporaryPrefectServer | None, out: IO[bytes]) -> TemporaryPrefectServer | None:
    """Start the run's temporary server first (its start is the long pole), as this process's child, and
    say its pid (the CLI kills one that never answered when it gives up on this process)."""
    if server is None:
        return None
    try:
        server.start(yield_cpu=True)  # the crawl needs the CPU more than a server it may never wait for
    except OSError as exc:
        write_message(out, ("finished", f"Prefect is not available: {error_text(exc)}"))
        os._exit(1)
    assert server.process is not None
    write_message(out, ("server", server.process.pid))
    return server


if __name__ == "__main__":
    child_main()
