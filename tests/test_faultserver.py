"""The fault server's in-flight count, which the politeness tests judge by: a request counts while its
client holds it, and stops counting once the client hangs up, even if its handler still sleeps."""
from __future__ import annotations

import threading
import time

import httpx

from tests.faultserver import FaultServer


def _in_flight_within(server: FaultServer, wanted: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.in_flight == wanted:
            return True
        time.sleep(0.01)
    return server.in_flight == wanted


def test_a_request_counts_while_its_client_waits_and_not_after_it_hangs_up(fault_server: FaultServer) -> None:
    url = fault_server.slow("/slow", 5)
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            httpx.get(url, timeout=1.0)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=fetch, daemon=True)
    waiting.start()
    assert _in_flight_within(fault_server, 1, 0.5)       # the client holds it: it counts
    time.sleep(0.3)
    assert fault_server.in_flight == 1
    waiting.join(3)                                       # the client's timeout: it closed the connection
    assert not waiting.is_alive() and isinstance(outcome[0], httpx.ReadTimeout)
    assert _in_flight_within(fault_server, 0, 0.5), "a request its client gave up on still counts as in flight"
    (record,) = fault_server.requests_for("/slow")
    assert record.finished is not None and record.finished - record.started < 2.0   # not the handler's 5 s
