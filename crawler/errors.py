"""Exceptions used inside the crawler. They never leave `Fetcher.fetch`: each becomes a FetchResult.

    SieveCrawlError            any crawler failure; `.kind` is one of result.ERROR_KINDS
    ├── TransientError         may pass on its own: timeout, connection, 429, 5xx  -> retried with backoff
    └── TerminalError          retrying cannot help: 4xx, too_large, not_html, robots,
                               offsite_redirect, too_many_redirects, bad_scheme, decode -> recorded, moved on

Keeping the split in the type lets the retry loop ask one question (`isinstance(exc, TransientError)`),
the same question a Prefect `retry_condition_fn` asks one layer up.
"""
from __future__ import annotations


class SieveCrawlError(Exception):
    """A fetch failed for a reason that is data (`kind`), not a bug."""

    kind: str = "connection"

    def __init__(
        self, kind: str, detail: str = "", *, status: int | None = None, content_type: str | None = None, nbytes: int = 0
    ) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
        self.status = status              # HTTP status when a response came
        self.content_type = content_type  # its Content-Type, when known
        self.nbytes = nbytes              # body bytes received before giving up


class TransientError(SieveCrawlError):
    """Worth another attempt after a pause; `retry_after` is what the server asked for, if anything."""

    def __init__(
        self, kind: str, detail: str = "", *, status: int | None = None, retry_after: float | None = None,
        content_type: str | None = None,
    ) -> None:
        super().__init__(kind, detail, status=status, content_type=content_type)
        self.retry_after = retry_after


class TerminalError(SieveCrawlError):
    """Another attempt would get the same answer: record it and move on."""
