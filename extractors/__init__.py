"""sieve's extraction layer: decoded HTML in, clean article (or a typed rejection) out. No I/O."""
from extractors.dedup import content_hash, hamming, simhash
from extractors.model import Article, Rejection, Rules
from extractors.pipeline import EXTRACTOR_VERSION, extract, rules_version

__all__ = [
    "Article",
    "EXTRACTOR_VERSION",
    "Rejection",
    "Rules",
    "content_hash",
    "extract",
    "hamming",
    "rules_version",
    "simhash",
]
