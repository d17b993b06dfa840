"""How the CLI forks its flow process (flows/flow_process.py): the child starts with the CLI's modules
already imported, in a process group of its own, with only its three pipes open.

It does not ask the kernel to die with the CLI (PR_SET_PDEATHSIG): the flow process watches its stdin
instead (flows/flow_child.py), so that it can outlive the CLI when the CLI hands it a run to record after
exiting, and otherwise ends as soon as the CLI is gone (even SIGKILLed: its end of the pipe closes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CHILD_NAME = b"sieve-flow-run"  # its name in ps/top (/proc/PID/comm); a forked child's command line is the CLI's


class ForkedChild:
    """The flow process forked from the CLI, with what is used of Popen's interface: its pipes, poll,
    wait, kill, returncode. The child runs flows/flow_child.py's main in a process group of its own
    and never returns here."""

    def __init__(self) -> None:
        (in_r, in_w), (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe(), os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child
            try:
                # A process group of its own: the terminal's Ctrl-C reaches the CLI only. Not a session of
                # its own: Linux shares the CPU between sessions first (autogroups), and in the CLI's the
                # temporary server, in its own, keeps a core while this process imports Prefect.
                os.setpgid(0, 0)
                _name_this_process(CHILD_NAME)
                for target, fd in enumerate((in_r, out_w, err_w)):
                    os.dup2(fd, target)
                _close_fds_from(3)
                from flows.flow_child import child_main

                child_main()
            except Exception:  # noqa: BLE001  (said on its stderr, which the CLI relays)
                import traceback

                traceback.print_exc()
            finally:
                os._exit(1)
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        self.stdin = os.fdopen(in_w, "wb")
        self.stdout = os.fdopen(out_r, "rb", buffering=0)
        self.stderr = os.fdopen(err_r, "rb")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.01)
        return code

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _name_this_process(name: bytes) -> None:
    import ctypes

    PR_SET_NAME = 15
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name))
    except (OSError, AttributeError):
        pass


def _close_fds_from(lowest: int) -> None:
    """Close what the child inherited beyond its three pipes (the CLI's files and sockets)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(lowest, 256))
    for fd in fds:
        if fd >= lowest:
            try:
                os.close(fd)
            except OSError:
                pass
