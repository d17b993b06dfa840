"""The crawler's exceptions: outcomes' tree with what a fetch knows added (status, content type, bytes, the
server's Retry-After). They never leave `Fetcher.fetch`: each becomes a FetchResult.

    outcomes.SieveError
    └── SieveCrawlError                 `.kind` is a key of outcomes.FETCH_ERRORS
        ├── TransientError              (also an outcomes.TransientError)  -> retried with backoff
        └── TerminalError               (also an outcomes.TerminalError)   -> recorded, moved on

Which of the two a kind is, is outcomes' decision (`is_transient`), never the raiser's: build errors with
`fetch_error(kind, …)`, which picks the class from the kind, so a 429 cannot be raised as a terminal 4xx
or a bug as a transient connection failure.
"""

from __future__ import annotations

import outcomes


class SieveCrawlError(outcomes.SieveError):
    """A fetch failed for a reason that is data (`kind`), not a bug."""

    def __init__(
        self,
        kind: str,
        detail: str = "",
        *,
        status: int | None = None,
        content_type: str | None = None,
        nbytes: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(kind, detail)
        self.status = status  # HTTP status when a response came
        self.content_type = content_type  # its Content-Type, when known
        self.nbytes = nbytes  # body bytes received before giving up
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), uncapped


class TransientError(SieveCrawlError, outcomes.TransientError):
    """Worth another attempt after a pause."""


class TerminalError(SieveCrawlError, outcomes.TerminalError):
    """Another attempt would get the same answer."""


def fetch_error(
    kind: str,
    detail: str = "",
    *,
    status: int | None = None,
    content_type: str | None = None,
    nbytes: int = 0,
    retry_after: float | None = None,
) -> SieveCrawlError:
    """The exception for `kind`, transient or terminal as outcomes says. Unknown kinds are refused: a typo
    here would otherwise become a row nobody can classify."""
    if kind not in outcomes.FETCH_ERRORS:
        raise ValueError(f"unknown fetch error kind {kind!r}")
    cls = TransientError if outcomes.is_transient(kind) else TerminalError
    return cls(kind, detail, status=status, content_type=content_type, nbytes=nbytes, retry_after=retry_after)
