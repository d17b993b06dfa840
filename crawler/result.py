"""What one fetch produced. A failed fetch is a value with a reason, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from outcomes import FETCH_ERRORS

ERROR_KINDS: tuple[str, ...] = tuple(FETCH_ERRORS)  # the one vocabulary (outcomes), in report order


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class FetchResult:
    url: str  # the URL asked for (normalised)
    final_url: str  # after redirects
    status: int | None  # HTTP status of the last response; None when no response came
    error: str | None = None  # one of ERROR_KINDS, None on success (2xx HTML or 304)
    detail: str = ""  # human-readable reason for the error
    content_type: str | None = None
    nbytes: int = 0
    elapsed_ms: int = 0
    encoding: str | None = None  # codec used to decode `text`
    replaced: bool = False  # decoding needed replacement characters
    attempts: int = 1
    etag: str | None = None
    last_modified: str | None = None
    retry_after_s: float | None = None  # the server's Retry-After on the last answer, capped at retry_after_cap_seconds
    fetched_at: datetime = field(default_factory=utcnow)
    body: bytes | None = None  # raw bytes (HTML, feeds, sitemaps) when the fetch succeeded
    text: str | None = None  # decoded body

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.error is None and self.status == 304
