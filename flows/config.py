"""Load config.yaml once, at the top, into typed objects.

Bad config is refused here, at load time, with the file, the key and the reason (ConfigError), so
no run ever starts half-configured: every model forbids unknown keys (a typo such as `warehous:` is
an error, not a default), regexes must compile and CSS selectors must parse in the engine that
extraction uses (selectolax lexbor). Nothing below `flows` reads YAML or environment variables.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crawler.settings import CrawlSettings
from extractors.model import Rules

DEFAULT_CONFIG = Path("config.yaml")  # relative to the working directory
CONFIG_ENV = "SIEVE_CONFIG"  # the CLI's --config default when set


class ConfigError(Exception):
    """A config file that cannot be used. The message names the file, the key and the reason."""


class ConfigNotFound(ConfigError):
    """The config file does not exist (the CLI adds how to name another one)."""


class KeyedValueError(ValueError):
    """A validator's error about a key below the field it validates: reported as `field.key`."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


def check_css_selector(selector: str) -> None:
    """Raise ValueError unless lexbor (the engine extraction uses) parses `selector`.

    Extraction skips a selector it cannot parse, silently; refusing it here is the only way a typo
    in config.yaml is seen.
    """
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    if not selector.strip():
        raise ValueError("empty CSS selector")
    try:
        LexborHTMLParser("<p></p>").css(selector)
    except SelectolaxError as exc:
        raise ValueError(f"invalid CSS selector {selector!r} ({exc})") from None


class WarehouseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Path("data/sieve.duckdb")


class PipelineSettings(BaseModel):
    """The `pipeline:` block: how the streaming crawl extracts and commits (every source alike)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extract_workers: int = Field(0, ge=0, le=256)  # extraction worker processes; 0 = one per core
    extract_budget_seconds: float = Field(10.0, gt=0, le=3600)  # CPU seconds per page; past it: rejection `timeout`
    commit_rows: int = Field(2000, ge=1, le=100_000)  # the writer commits a window at this many rows ...
    commit_seconds: float = Field(1.0, gt=0, le=600)  # ... or this long after the window opened, whichever first


class SourceConfig(BaseModel):
    """One aggregator: where to start, which links to follow, how to clean its pages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_urls: tuple[str, ...] = Field(min_length=1)
    allowed_hosts: tuple[str, ...] = Field(min_length=1)
    list_url_pattern: str | None = None  # regex searched in a URL: list pages (pagination) to follow
    article_url_pattern: str | None = None  # regex searched in a URL: article pages to extract
    schedule: str | None = None  # cron, for `sieve serve`
    max_pages: int | None = Field(None, ge=1)  # per run; None = until the frontier is empty
    max_list_pages: int = Field(2000, ge=1)  # list/feed/sitemap pages fetched per run, at most
    max_depth: int = Field(1000, ge=0)  # list pages followed this many links deep from a start URL, at most
    crawl: dict[str, Any] = Field(default_factory=dict)  # overrides of the global `crawl:` keys for this source
    rules: Rules = Rules()

    @field_validator("start_urls")
    @classmethod
    def _http_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an absolute http(s) URL: {url!r}")
        return urls

    @field_validator("allowed_hosts")
    @classmethod
    def _lowercase_hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in hosts)

    @field_validator("list_url_pattern", "article_url_pattern")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return pattern

    @field_validator("rules")
    @classmethod
    def _selectors_parse(cls, rules: Rules) -> Rules:
        keyed = [("content_selector", rules.content_selector)] if rules.content_selector is not None else []
        keyed += [(f"drop_selectors.{i}", selector) for i, selector in enumerate(rules.drop_selectors)]
        for key, selector in keyed:
            try:
                check_css_selector(selector)
            except ValueError as exc:
                raise KeyedValueError(key, str(exc)) from None
        return rules

    @field_validator("schedule")
    @classmethod
    def _cron_parses(cls, cron: str | None) -> str | None:
        if cron is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(cron, datetime(2026, 1, 1))
            except CronSimError as exc:
                raise ValueError(f"invalid cron expression {cron!r}: {exc}") from None
        return cron

    @model_validator(mode="after")
    def _start_urls_on_allowed_hosts(self) -> SourceConfig:
        for url in self.start_urls:
            host = (urlsplit(url).hostname or "").lower()
            if host not in self.allowed_hosts:
                raise ValueError(f"start URL {url!r} is not on allowed_hosts {list(self.allowed_hosts)}")
        return self

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


class FleetSettings(BaseModel):
    """The `fleet:` block: crawling beyond one machine (flows/fleet.py, docs/orchestration.md). Unused by `sieve crawl`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shards: str = "data/shards"  # where workers write shards: a folder (relative to this file) or an fsspec URL
    work_pool: str = "sieve"  # the Prefect work pool the workers poll
    claim_urls: int = Field(200, ge=1, le=100_000)  # fetches per claim, found articles included (one worker run each)
    max_claims: int = Field(4, ge=1, le=10_000)  # claims out at once per dispatcher: about one per worker slot
    lease_seconds: float = Field(300.0, ge=5, le=86_400)  # a claim's worker must write a shard this often, or lose it
    start_seconds: float = Field(
        600.0, ge=5, le=86_400
    )  # ... and its first one this soon after the claim (queue, start-up)
    poll_seconds: float = Field(2.0, gt=0, le=600)  # the dispatcher's round: load shards, expire, claim
    clean_after_seconds: float = Field(3600.0, ge=0)  # a part without a manifest this old is deleted

    @field_validator("shards")
    @classmethod
    def _shards_location(cls, location: str) -> str:
        if not location.strip():
            raise ValueError("empty shards location")
        return location.strip()

    @property
    def is_url(self) -> bool:
        return "://" in self.shards


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouse: WarehouseSettings = WarehouseSettings()
    crawl: CrawlSettings = CrawlSettings()
    pipeline: PipelineSettings = PipelineSettings()
    sources: dict[str, SourceConfig] = Field(min_length=1)
    fleet: FleetSettings = FleetSettings()

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in sources:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
                raise ValueError(f"source name {name!r} must be lowercase letters, digits, '-' or '_'")
        return sources

    @model_validator(mode="after")
    def _overrides_valid(self) -> Config:
        for name, source in self.sources.items():
            try:
                CrawlSettings.model_validate({**self.crawl.model_dump(), **source.crawl})
            except ValidationError as exc:
                first = exc.errors()[0]
                key = ".".join(str(p) for p in first["loc"])
                raise KeyedValueError(f"sources.{name}.crawl.{key}", first["msg"]) from None
        return self

    def crawl_settings(self, name: str) -> CrawlSettings:
        """The global crawl settings with the source's own overrides applied."""
        source = self.source(name)
        if not source.crawl:
            return self.crawl
        return CrawlSettings.model_validate({**self.crawl.model_dump(), **source.crawl})

    def source(self, name: str) -> SourceConfig:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources))
            raise ConfigError(f"unknown source {name!r}; configured sources: {known}") from None


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Read and validate a config file. Relative warehouse paths are resolved against the file's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigNotFound(
            f"{path}: file not found (in {Path.cwd()})" if not path.is_absolute() else f"{path}: file not found"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping with a 'sources' key")
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from None
    if not config.warehouse.path.is_absolute():
        resolved = (path.resolve().parent / config.warehouse.path).resolve()
        config = config.model_copy(update={"warehouse": WarehouseSettings(path=resolved)})
    if not config.fleet.is_url and not Path(config.fleet.shards).is_absolute():
        shards = str((path.resolve().parent / config.fleet.shards).resolve())
        config = config.model_copy(update={"fleet": config.fleet.model_copy(update={"shards": shards})})
    return config


def _describe(path: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        reason = error["msg"].removeprefix("Value error, ")
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, KeyedValueError):
            parts.append(cause.key)
            reason = str(cause)
        lines.append(f"{path}: {'.'.join(parts) or '(top level)'}: {reason}")
    return "\n".join(lines)
