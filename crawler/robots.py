"""robots.txt: fetched once per origin per Fetcher (concurrent callers share the one download), parsed by protego.

What an answer means (RFC 9309 section 2.3.1):
  2xx          -> the rules in it (at most ROBOTS_MAX_BYTES of it, decoded: the rest is cut off, as the RFC allows)
  4xx but 429  -> no rules: everything allowed
  anything else: a network failure or timeout, 5xx, 429, a corrupt encoding, a redirect off the allowed
               hosts, a loop -> "unreachable": the host is not crawled for the rest of this run (the
               RFC's safe default), and each of its URLs fails fast with kind `unreachable`, which the
               frontier defers with backoff (minutes to hours), not as a robots refusal
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protego import Protego

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least 500 KiB


@dataclass(frozen=True)
class RobotsAnswer:
    """What robots.txt fetching produced for one origin."""

    parser: Protego | None  # None: allow all (4xx) or disallow all (unreachable)
    allow_all: bool
    reason: str  # e.g. "200", "404: no rules", "http_5xx: HTTP 503"

    @property
    def unreachable(self) -> bool:
        return self.parser is None and not self.allow_all

    def can_fetch(self, url: str, user_agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, user_agent)

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(user_agent)
        return float(delay) if delay is not None else None


@dataclass(frozen=True)
class RobotsFetch:
    """What downloading robots.txt gave: a status and text, or the fetch error kind and its detail."""

    status: int | None
    text: str | None = None
    error: str | None = None
    detail: str = ""


RobotsDownloader = Callable[[str], Awaitable[RobotsFetch]]


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
        got = await self.download(origin + "/robots.txt")
        if got.error is None and got.status is not None and 200 <= got.status < 300 and got.text is not None:
            return RobotsAnswer(Protego.parse(got.text), True, str(got.status))
        if got.error == "http_4xx":
            return RobotsAnswer(None, True, f"{got.status}: no rules")
        reason = f"{got.error}: {got.detail}" if got.error else f"HTTP {got.status}"
        return RobotsAnswer(None, False, reason)

    def cached(self, origin: str) -> RobotsAnswer | None:
        task = self._answers.get(origin)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        return None

    def cancel_pending(self) -> None:
        for task in self._answers.values():
            if not task.done():
                task.cancel()
