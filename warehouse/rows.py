"""Rows the warehouse accepts and returns. Plain data: the warehouse knows nothing of HTTP or HTML parsing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SourceRow:
    source_id: str
    config_hash: str
    config_json: str


@dataclass(frozen=True, slots=True)
class FrontierRow:
    url: str  # canonical URL (the key)
    source_id: str
    kind: str  # "list" | "article" | "feed" | "sitemap"
    discovered_from: str | None = None


@dataclass(frozen=True, slots=True)
class FrontierItem:
    url: str
    source_id: str
    kind: str
    etag: str | None
    last_modified: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class FetchRow:
    run_id: str | None
    source_id: str
    url: str
    kind: str
    final_url: str
    status: int | None
    error: str | None  # error kind, None when the fetch succeeded (2xx or 304)
    detail: str
    content_type: str | None
    nbytes: int
    elapsed_ms: int
    encoding: str | None
    replaced: bool
    attempts: int
    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    html: str | None  # decoded HTML to keep in `pages` (None for failures, 304 and non-HTML)
    retry_after_s: float | None = None  # a 429/425's Retry-After in seconds: when the frontier tries the URL again


@dataclass(frozen=True, slots=True)
class PageRow:
    url: str
    source_id: str
    html: str
    fetched_at: datetime
    html_hash: str = ""  # hash of `html`; pass it back on ArticleRow/Rejection to pin what was extracted
    encoding: str | None = None
    final_url: str | None = None
    kind: str = "article"


@dataclass(frozen=True, slots=True)
class ArticleRow:
    article_id: str  # hash of the canonical URL
    source_id: str
    url: str
    title: str | None
    author: str | None
    account: str | None
    published_at: datetime | None
    text: str
    content_hash: str
    simhash: int  # unsigned 64-bit
    flags: str  # comma-separated
    extractor_version: str
    rules_version: str
    extracted_at: datetime
    page_url: str | None = None  # the `pages` URL it came from, when it differs from `url`
    html_hash: str | None = None  # PageRow.html_hash it was extracted from (None: the page's current hash)


@dataclass(frozen=True, slots=True)
class Rejection:
    url: str  # the page URL
    source_id: str
    reason: str
    extractor_version: str
    rules_version: str
    extracted_at: datetime
    detail: str = ""
    html_hash: str | None = None  # PageRow.html_hash it was extracted from (None: the page's current hash)


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]


@dataclass(frozen=True, slots=True)
class ExtractionCounts:
    """What one `record_extractions` call did.

    `duplicates` counts the new or changed articles of the batch that were folded into an earlier one
    (`dup_of` set); unchanged articles are not counted again.
    """

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }
