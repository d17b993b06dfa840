"""One vocabulary for what can go wrong, shared by crawler, extractors, warehouse and flows.

Every failed fetch, rejected page and ended run is a row with one of the kinds below; whether a kind
is worth another attempt (transient) or not (terminal) is decided here and nowhere else. This package
imports nothing of sieve, so every layer may import it (it sits below all of them).

    SieveError                 a failure that is data: `.kind` is a key of FETCH_ERRORS (or another table here)
    ├── TransientError         may pass on its own: retried with backoff (Prefect's retry_condition_fn asks this)
    └── TerminalError          another attempt would get the same answer: recorded, moved on

An exception that is not a SieveError is a bug: it is logged with its traceback and counted as
`internal_error`, never retried as if the network had failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "FETCH_ERRORS",
    "REJECTION_REASONS",
    "RUN_STATUSES",
    "TRANSIENT_FETCH_ERRORS",
    "INTERNAL_ERROR",
    "SieveError",
    "TransientError",
    "TerminalError",
    "is_transient",
]

INTERNAL_ERROR = "internal_error"

# kind -> (transient?, what it means). Order is the order reports list them in.
_FETCH: dict[str, tuple[bool, str]] = {
    "timeout": (True, "no complete answer within timeout_seconds (or HTTP 408)"),
    "connection": (True, "connecting, sending or receiving failed (refused, reset, DNS)"),
    "unreachable": (
        True,
        "the host's robots.txt could not be fetched (network failure, timeout, 5xx, 429, or a redirect off allowed_hosts): the host is not crawled for now",
    ),
    "rate_limited": (True, "HTTP 429 (or 425): the host asked us to slow down; Retry-After is followed, capped"),
    "http_5xx": (True, "the server failed (HTTP 5xx)"),
    "http_4xx": (False, "the server refused (HTTP 4xx other than 408, 425, 429)"),
    "robots": (False, "disallowed by robots.txt"),
    "too_large": (False, "the body (decoded, every Content-Encoding layer counted) passed max_bytes"),
    "not_html": (False, "not an HTML, XML or feed document"),
    "decode": (False, "the Content-Encoding could not be undone (unknown coding, corrupt stream)"),
    "undecodable": (False, "the decoded text is mostly replacement or control characters: not text"),
    "offsite_redirect": (False, "a redirect left the source's allowed_hosts"),
    "too_many_redirects": (False, "more than max_redirects redirects, or a loop"),
    "bad_scheme": (False, "not an http(s) URL, or a malformed one"),
    INTERNAL_ERROR: (False, "a bug in sieve (logged with its traceback); not retried"),
}
FETCH_ERRORS: Mapping[str, str] = MappingProxyType({kind: what for kind, (_, what) in _FETCH.items()})
TRANSIENT_FETCH_ERRORS: tuple[str, ...] = tuple(kind for kind, (transient, _) in _FETCH.items() if transient)

# Why a fetched page holds no article. All terminal for this extractor version: `sieve reextract`
# redoes them from the stored HTML when the extractor or the rules change.
REJECTION_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "empty": "no markup, or nothing left after pruning",
        "too_short": "less article text than the minimum",
        "list_page": "a page of headlines, not an article",
        "undecodable": "the text is mostly replacement or control characters",
        "timeout": "extraction passed its CPU budget (the worker was replaced)",
        "outside_window": "published outside a backfill's --since/--until window",
        INTERNAL_ERROR: "a bug in the extractor (logged with its traceback)",
    }
)

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "cancelled", "crashed")


def is_transient(kind: str | None) -> bool:
    """True for the fetch error kinds worth another attempt later; unknown kinds are terminal."""
    entry = _FETCH.get(kind or "")
    return bool(entry and entry[0])


class SieveError(Exception):
    """A failure that is data, not a bug: `kind` names it, `detail` says it for a person."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class TransientError(SieveError):
    """Worth another attempt after a pause."""


class TerminalError(SieveError):
    """Another attempt would get the same answer: record it and move on."""
