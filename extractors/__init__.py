"""sieve's extraction layer: decoded HTML in, clean article (or a typed rejection) out. No I/O.

Names load on first use (PEP 562), so `from extractors.model import Rules` (config loading) does not
pull in trafilatura: commands that only read config start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from extractors.dedup import content_hash as content_hash, hamming as hamming, simhash as simhash
    from extractors.model import Article as Article, Rejection as Rejection, Rules as Rules
    from extractors.pipeline import (
        EXTRACTOR_VERSION as EXTRACTOR_VERSION,
        extract as extract,
        rules_version as rules_version,
    )

_EXPORTS = {
    "Article": "extractors.model",
    "EXTRACTOR_VERSION": "extractors.pipeline",
    "Rejection": "extractors.model",
    "Rules": "extractors.model",
    "content_hash": "extractors.dedup",
    "extract": "extractors.pipeline",
    "hamming": "extractors.dedup",
    "rules_version": "extractors.pipeline",
    "simhash": "extractors.dedup",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'extractors' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
