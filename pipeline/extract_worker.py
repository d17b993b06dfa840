"""What runs in an extraction worker process. It imports `extractors` and the standard library only,
so the fork server preloads it once and a worker starts in milliseconds.

A worker first says which extractor and rules versions it runs, then reads chunks of pages from its
end of a socket pair and answers one message per page, so the parent knows which page each worker is
on. Each page gets `budget_s` seconds of this process's CPU time (ITIMER_PROF): past it the page comes
back as `("timeout", index)` and the worker exits, to be replaced (an interrupted trafilatura or lxml may be left in any state). The parent kills a
worker stuck in C code that never returns to Python, by wall time.

Ctrl-C belongs to the parent (the terminal sends SIGINT to the whole process group), and a worker
whose parent has gone (SIGKILL, OOM) exits within a second even in the middle of a page.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import extractors.pipeline  # noqa: F401  (the fork server preloads this module: the import cost is paid once)
from extractors import EXTRACTOR_VERSION, Rules, extract, rules_version
from extractors.model import Rejection


class PageTimeout(BaseException):
    """Raised by the CPU timer inside extraction. BaseException: `extract()` turns any Exception into a
    rejection, and this one must get out."""


def extract_chunk(pages: Sequence[tuple[str, str, datetime]], rules: Rules) -> list[tuple[str, Any]]:
    """For executors (a thread, a Dask cluster): no budget, one call per chunk."""
    return [(url, extract(html, url, rules, fetched_at=fetched_at)) for url, html, fetched_at in pages]


def _on_budget(signum: int, frame: object) -> None:
    raise PageTimeout


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was reused by another user's process: ours is gone
            os._exit(1)


def serve(conn: Connection, rules: Rules, budget_s: float, parent_pid: int) -> None:
    """The worker's main loop: until the parent closes its end (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _on_budget)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="orphan-watch", daemon=True).start()
    try:  # the versions stored with every outcome: the parent need not import the extractor itself
        conn.send_bytes(pickle.dumps(("hello", EXTRACTOR_VERSION, rules_version(rules))))
    except OSError:
        return
    while True:
        try:
            pages = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        for index, (url, html, fetched_at) in enumerate(pages):
            try:
                signal.setitimer(signal.ITIMER_PROF, budget_s)
                try:
                    result: Any = extract(html, url, rules, fetched_at=fetched_at)
                finally:
                    signal.setitimer(signal.ITIMER_PROF, 0)
            except PageTimeout:
                conn.send_bytes(pickle.dumps(("timeout", index)))
                return
            except Exception:  # extract() never raises by contract: this is a bug, sent with its traceback
                result = Rejection(url=url, reason="internal_error", detail=traceback.format_exc()[-2000:])
            try:
                conn.send_bytes(pickle.dumps((index, result), protocol=pickle.HIGHEST_PROTOCOL))
            except (BrokenPipeError, OSError):
                return
