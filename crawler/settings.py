"""Crawl settings: the `crawl:` block of config.yaml, validated once at load time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CrawlSettings(BaseModel):
    """Politeness, limits and retries for one crawl run. Defaults are sane for a real site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_agent: str = Field("sieve/0.1 (+https://github.com/sieve-project/sieve)", min_length=1)
    concurrency: int = Field(8, ge=1, le=512, description="global in-flight requests")
    per_host_concurrency: int = Field(2, ge=1, le=64, description="in-flight requests per host")
    delay_seconds: float = Field(0.5, ge=0, le=3600, description="minimum gap between requests to one host")
    timeout_seconds: float = Field(15.0, gt=0, le=600, description="per request (connect, read, write, pool)")
    retries: int = Field(3, ge=0, le=20, description="extra attempts for transient failures")
    backoff_base_seconds: float = Field(0.5, ge=0, le=60)
    backoff_max_seconds: float = Field(30.0, ge=0, le=3600)
    retry_after_cap_seconds: float = Field(60.0, ge=0, le=86400, description="longest Retry-After honoured")
    max_bytes: int = Field(
        5_000_000,
        ge=1024,
        description="bodies larger than this (decoded, every Content-Encoding layer) are aborted while streaming",
    )
    max_redirects: int = Field(5, ge=0, le=30)
    respect_robots: bool = True
    max_crawl_delay_seconds: float = Field(
        60.0, ge=0, le=3600, description="a robots.txt Crawl-delay above this is clamped to it"
    )
    rate_limit_pause_after: int = Field(
        5,
        ge=1,
        le=1000,
        description="consecutive 429/425 answers from one host after which it is paused for the rest of the run",
    )
    max_cookies_per_host: int = Field(50, ge=0, le=1000, description="cookies kept per cookie domain; 0 keeps none")
    max_cookie_bytes_per_host: int = Field(
        8192, ge=0, le=1_000_000, description="bytes of cookie names and values kept per cookie domain"
    )
    transport: Literal["aiohttp", "httpx"] = Field(
        "aiohttp", description="what carries httpx's requests: aiohttp (httpx-aiohttp, less CPU) or httpx's own"
    )
    trust_env: bool = Field(False, description="use HTTP(S)_PROXY / NO_PROXY / .netrc from the environment")
    revisit_after_hours: float = Field(
        168.0, ge=0, description="an article page is refetched (conditionally) this long after its last fetch"
    )
