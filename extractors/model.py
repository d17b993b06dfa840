"""Types of the extraction layer: the rules a source declares and what extraction returns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator


class Rules(BaseModel):
    """Per-source cleaning rules (`sources.<name>.rules` in config.yaml).

    Global genre rules (WeChat calls-to-action, cut-off markers, ...) always apply in addition.
    Regexes run on RE2 (linear time) and are compiled at load time, so a bad one, or one RE2
    cannot take (backreferences, lookaround), is refused with its key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop_selectors: tuple[str, ...] = ()  # CSS selectors of nodes removed before extraction
    content_selector: str | None = None  # fallback container when the main extractor finds too little
    cut_at: tuple[str, ...] = ()  # regexes: a matching line and everything after it go
    drop_lines: tuple[str, ...] = ()  # regexes: whole lines that go
    strip_prefix: tuple[str, ...] = ()  # regexes: removed from the start of the text (site banner)
    timezone: str = "Asia/Shanghai"  # for dates on the page that carry none

    @field_validator("cut_at", "drop_lines", "strip_prefix")
    @classmethod
    def _regexes_compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        from extractors.regex import compile_rule  # RE2: linear time on any line (extractors/regex.py)

        for pattern in patterns:
            compile_rule(pattern)  # RuleRegexError is a ValueError: pydantic reports it with its key
        return patterns

    @property
    def version(self) -> str:
        """Short hash of the rule content: stored with each article so stale ones can be redone."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Article:
    url: str
    title: str | None
    text: str  # paragraphs separated by "\n"
    author: str | None = None
    account: str | None = None  # original WeChat official account (公众号), when the page names it
    published_at: datetime | None = None  # timezone-aware; None when the article carries no date
    site_name: str | None = None
    lang: str | None = None
    content_hash: str = ""  # sha256 of NFKC text without whitespace
    simhash: int = 0  # 64-bit, unsigned
    flags: tuple[str, ...] = ()  # e.g. "rules_capped" when rules would have removed over a third
    extractor_version: str = ""
    rules_version: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """The page holds no article (a list page, an empty or unparsable document)."""

    url: str
    reason: str  # short machine-readable kind: "empty", "too_short", "list_page", ...
    detail: str = ""
    extractor_version: str = ""
    rules_version: str = ""
    meta: dict = field(default_factory=dict)
