"""crawler: polite, bounded fetching (httpx), charset decoding and link discovery. No DuckDB, no parsing
of article bodies. The public surface is what `__all__` names; everything else may change."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Light (stdlib only) and imported now: the function `discover` shares its name with its module, and
# a lazy import of the module would otherwise leave the module object bound to `crawler.discover`.
from crawler.discover import (
    Discovered as Discovered,
    LinkRules as LinkRules,
    discover as discover,
    document_kind as document_kind,
)

if TYPE_CHECKING:
    from crawler.decode import DecodedText as DecodedText, decode_html as decode_html
    from crawler.errors import (
        SieveCrawlError as SieveCrawlError,
        TerminalError as TerminalError,
        TransientError as TransientError,
    )
    from crawler.fetcher import Fetcher as Fetcher, FetcherStats as FetcherStats, host_key as host_key
    from crawler.result import ERROR_KINDS as ERROR_KINDS, FetchResult as FetchResult
    from crawler.settings import CrawlSettings as CrawlSettings
    from crawler.urls import HostRules as HostRules, normalize_url as normalize_url

_EXPORTS = {
    "CrawlSettings": "crawler.settings",
    "DecodedText": "crawler.decode",
    "Discovered": "crawler.discover",
    "ERROR_KINDS": "crawler.result",
    "FetchResult": "crawler.result",
    "Fetcher": "crawler.fetcher",
    "FetcherStats": "crawler.fetcher",
    "HostRules": "crawler.urls",
    "LinkRules": "crawler.discover",
    "SieveCrawlError": "crawler.errors",
    "TerminalError": "crawler.errors",
    "TransientError": "crawler.errors",
    "decode_html": "crawler.decode",
    "discover": "crawler.discover",
    "document_kind": "crawler.discover",
    "host_key": "crawler.fetcher",
    "normalize_url": "crawler.urls",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load on first use (PEP 562): config loading imports crawler.settings without pulling in httpx."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crawler' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
