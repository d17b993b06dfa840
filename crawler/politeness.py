"""Global and per-host concurrency caps and per-host spacing, shared by every task of one Fetcher.

A request to a host goes through, in order:
  1. the host's semaphore (at most `per_host_concurrency` in flight to it),
  2. the host's start gate (a lock): wait until `delay` after the previous *actual* start to this host,
     or until a Retry-After pause set on the host has passed,
  3. the global semaphore (at most `concurrency` in flight in all), taken while still holding the gate,
     so the start time recorded is the real one and spacing between starts never drops below `delay`;
     the fetcher moves the mark to when the request headers are actually written (`mark_sent`).
Waiting for the delay holds only this host's gate, never a global slot; backoff sleeps between
retries happen outside all of it (see fetcher.py).

A host that keeps answering 429 is *halted*: after `rate_limit_pause_after` consecutive rate-limit
answers no request to it starts again in this run (`halted()` says why; the fetcher fails its URLs fast).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class HostState:
    semaphore: asyncio.Semaphore
    gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    delay: float = 0.0
    last_start: float = float("-inf")
    paused_until: float = 0.0
    in_flight: int = 0
    throttled: int = 0  # consecutive rate-limit answers
    halted: str | None = None  # why no request to this host starts again in this run
    last_retry_after: float | None = None


class Politeness:
    def __init__(self, concurrency: int, per_host_concurrency: int, delay_seconds: float) -> None:
        self.global_slots = asyncio.Semaphore(concurrency)
        self.per_host = per_host_concurrency
        self.default_delay = delay_seconds
        self.hosts: dict[str, HostState] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.max_in_flight_by_host: dict[str, int] = {}

    def host(self, key: str) -> HostState:
        state = self.hosts.get(key)
        if state is None:
            state = self.hosts[key] = HostState(asyncio.Semaphore(self.per_host), delay=self.default_delay)
        return state

    def set_delay(self, key: str, delay: float) -> None:
        """Raise a host's spacing (robots.txt Crawl-delay); never below the configured delay."""
        state = self.host(key)
        state.delay = max(self.default_delay, delay)

    def pause(self, key: str, seconds: float) -> None:
        """The host asked us to slow down (429/503 Retry-After): no new request starts before then."""
        state = self.host(key)
        state.paused_until = max(state.paused_until, time.monotonic() + seconds)

    def note_answer(self, key: str, *, rate_limited: bool, retry_after: float | None, halt_after: int) -> None:
        """Count consecutive rate-limit answers; any other answer resets the count. Halts the host at `halt_after`."""
        state = self.host(key)
        if not rate_limited:
            state.throttled = 0
            return
        state.throttled += 1
        state.last_retry_after = retry_after
        if state.throttled >= halt_after and state.halted is None:
            state.halted = f"the host answered 429 {state.throttled} times in a row: paused for the rest of this run"

    def halted(self, key: str) -> str | None:
        state = self.hosts.get(key)
        return state.halted if state is not None else None

    def last_retry_after(self, key: str) -> float | None:
        state = self.hosts.get(key)
        return state.last_retry_after if state is not None else None

    def spaced(self, key: str) -> bool:
        state = self.hosts.get(key)
        return state is not None and state.delay > 0

    def mark_sent(self, key: str) -> None:
        """The request's bytes are leaving now (after any TCP connect): spacing counts from here, so a slow
        connect cannot make two requests arrive closer together than the delay. Waiters re-check after sleeping."""
        state = self.hosts.get(key)
        if state is not None:
            state.last_start = max(state.last_start, time.monotonic())

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        state = self.host(key)
        async with state.semaphore:
            async with state.gate:
                while True:
                    now = time.monotonic()
                    wait = max(state.last_start + state.delay, state.paused_until) - now
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait)
                await self.global_slots.acquire()
                state.last_start = time.monotonic()
            try:
                state.in_flight += 1
                self.in_flight += 1
                if state.in_flight > self.max_in_flight_by_host.get(key, 0):
                    self.max_in_flight_by_host[key] = state.in_flight
                if self.in_flight > self.max_in_flight:
                    self.max_in_flight = self.in_flight
                yield
            finally:
                state.in_flight -= 1
                self.in_flight -= 1
                self.global_slots.release()
