"""crawler: polite, bounded fetching (httpx), charset decoding and link discovery. No DuckDB, no parsing
of article bodies. The public surface is what `__all__` names; everything else may change."""
from crawler.decode import DecodedText, decode_html
from crawler.discover import Discovered, LinkRules, discover, document_kind
from crawler.errors import SieveCrawlError, TerminalError, TransientError
from crawler.fetcher import Fetcher, FetcherStats, host_key
from crawler.result import ERROR_KINDS, FetchResult
from crawler.settings import CrawlSettings
from crawler.urls import HostRules, normalize_url

__all__ = [
    "CrawlSettings",
    "DecodedText",
    "Discovered",
    "ERROR_KINDS",
    "FetchResult",
    "Fetcher",
    "FetcherStats",
    "HostRules",
    "LinkRules",
    "SieveCrawlError",
    "TerminalError",
    "TransientError",
    "decode_html",
    "discover",
    "document_kind",
    "host_key",
    "normalize_url",
]
