"""How long to wait before the next attempt: the server's Retry-After if it sent one, else
exponential backoff with jitter (spreads a herd of retries over time)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_STATUS_KINDS = {408: "timeout", 425: "rate_limited", 429: "rate_limited"}


def status_kind(status: int) -> str:
    """The fetch error kind of an HTTP error status (>= 400); whether it is retried is outcomes' call."""
    if status >= 500:
        return "http_5xx"
    return _STATUS_KINDS.get(status, "http_4xx")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date. None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Pause after failed attempt number `attempt` (1-based): uniform in [base*2^(n-1)/2, base*2^(n-1)], capped.

    Half-jitter rather than full jitter keeps a floor, so a retry never hammers a struggling host at once.
    """
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    r = (rng or random).random()
    return ceiling * (0.5 + 0.5 * r)
