"""An extraction's outcome as the row the writer stores: an article, or a rejection with its reason
(a bug in extraction logged with its traceback; an article outside a backfill's window rejected as such)."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from extractors.model import Article
from outcomes import INTERNAL_ERROR
from pipeline.intake import Page
from pipeline.spec import PublishedWindow, SourceSpec
from pipeline.summary import OUTSIDE_WINDOW
from warehouse import ArticleRow, Rejection

log = logging.getLogger("sieve.pipeline")


def outcome_row(
    source: SourceSpec,
    page: Page,
    result: Any,
    versions: tuple[str, str] | None,
    published: PublishedWindow,
    now: datetime,
) -> ArticleRow | Rejection:
    """`result` (an Article, or extractors' Rejection) for `page` as a row; `versions` (extractor, rules)
    fill in what a result does not carry."""
    extractor_version, rules_version = versions or ("", "")
    if isinstance(result, Article) and published_inside(result, published, source.rules.timezone):
        return article_row(source.name, page.url, result, now, page.html_hash)
    if isinstance(result, Article):
        return Rejection(
            page.url,
            source.name,
            OUTSIDE_WINDOW,
            result.extractor_version or extractor_version,
            result.rules_version or rules_version,
            now,
            html_hash=page.html_hash,
        )
    if result.reason == INTERNAL_ERROR:
        log.error("a bug in extraction on %s:\n%s", page.url, result.detail)
    return Rejection(
        page.url,
        source.name,
        result.reason,
        result.extractor_version or extractor_version,
        result.rules_version or rules_version,
        now,
        detail=(result.detail or "")[:500],
        html_hash=page.html_hash,
    )


def published_inside(article: Article, published: PublishedWindow, timezone: str) -> bool:
    since, until = published.since, published.until
    if since is None and until is None:
        return True
    if article.published_at is None:
        return False  # a window asks for dated articles; an undated one cannot be shown to fall inside
    day = article.published_at.astimezone(ZoneInfo(timezone)).date()
    return (since is None or day >= since) and (until is None or day < until)


def article_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:20]


def article_row(source_id: str, url: str, a: Article, now: datetime, html_hash: str | None = None) -> ArticleRow:
    return ArticleRow(
        article_id=article_id(url),
        source_id=source_id,
        url=url,
        title=a.title,
        author=a.author,
        account=a.account,
        published_at=a.published_at,
        text=a.text,
        content_hash=a.content_hash,
        simhash=a.simhash,
        flags=",".join(a.flags),
        extractor_version=a.extractor_version,
        rules_version=a.rules_version,
        extracted_at=now,
        html_hash=html_hash,
    )
