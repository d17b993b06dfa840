"""robots.txt: fetched once per origin per Fetcher (concurrent callers share the one download), parsed by protego.

What an answer means (RFC 9309 section 2.3.1):
  2xx          -> the rules in it
  4xx          -> no rules: everything allowed
  5xx, network -> "unreachable": everything disallowed for this run (the RFC's safe default), with the reason
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protego import Protego

ROBOTS_MAX_BYTES = 512 * 1024   # RFC 9309: parse at least 500 KiB


@dataclass(frozen=True)
class RobotsAnswer:
    """What robots.txt fetching produced for one origin."""

    parser: Protego | None     # None: allow all (4xx) or disallow all (unreachable)
    allow_all: bool
    reason: str                # e.g. "200", "404: no rules", "unreachable: http_5xx"

    def can_fetch(self, url: str, user_agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, user_agent)

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(user_agent)
        return float(delay) if delay is not None else None


# (robots URL) -> (status or None, text or None, error kind or None)
RobotsDownloader = Callable[[str], Awaitable[tuple[int | None, str | None, str | None]]]


class RobotsCache:
    def __init__(self, download: RobotsDownloader, user_agent: str) -> None:
        self.download = download
        self.user_agent = user_agent
        self._answers: dict[str, asyncio.Task[RobotsAnswer]] = {}

    async def answer(self, origin: str) -> RobotsAnswer:
        """The rules for `origin`; the first caller starts the download, everyone awaits the same task.
        The task is shielded, so a caller that is cancelled does not cancel it for the others."""
        task = self._answers.get(origin)
        if task is None:
            task = self._answers[origin] = asyncio.create_task(self._load(origin))
        return await asyncio.shield(task)

    async def _load(self, origin: str) -> RobotsAnswer:
        status, text, error = await self.download(origin + "/robots.txt")
        if status is not None and 200 <= status < 300 and text is not None:
            return RobotsAnswer(Protego.parse(text), True, str(status))
        if status is not None and 400 <= status < 500:
            return RobotsAnswer(None, True, f"{status}: no rules")
        return RobotsAnswer(None, False, f"unreachable: {error or status}")

    def cached(self, origin: str) -> RobotsAnswer | None:
        task = self._answers.get(origin)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        return None

    def cancel_pending(self) -> None:
        for task in self._answers.values():
            if not task.done():
                task.cancel()
