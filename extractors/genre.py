"""Global genre rules (genre.yaml) merged with a source's Rules, compiled once per rules version.

Why a YAML file: the rules are data that a reader should be able to review line by line, and the
hash of their content is part of `rules_version`, so editing them marks stored articles stale.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from extractors.model import Rules
from extractors.regex import compile_rule

__all__ = ["CompiledRules", "compiled", "genre_digest", "GENRE_PATH"]

GENRE_PATH = Path(__file__).with_name("genre.yaml")
_GENRE_TEXT = GENRE_PATH.read_text(encoding="utf-8")
_GENRE = yaml.safe_load(_GENRE_TEXT)
_EMPTY_RULES = Rules()


def genre_digest() -> str:
    """Hash of the global rule file's content."""
    return hashlib.sha256(_GENRE_TEXT.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """Everything extraction needs, ready to run: selectors, class words, compiled regexes."""

    drop_selectors: tuple[str, ...]
    class_words: frozenset[str]
    content_selector: str | None
    cut_at: tuple[Any, ...]  # re.Pattern (genre) or RE2 pattern (source rules): both .search/.match
    drop_lines: tuple[Any, ...]
    teaser_lines: tuple[Any, ...]
    strip_prefix: tuple[Any, ...]
    timezone: str
    notice: Any = None  # disclaimers, copyright, comment rules: never the article (RE2)
    hidden_words: frozenset[str] = frozenset()  # class/id words of comment threads: invisible to density


def _compile(patterns: list[str] | tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def _compile_source(patterns: tuple[str, ...]) -> tuple[Any, ...]:
    """A source's own patterns: RE2, linear time whatever a user wrote (extractors/regex.py)."""
    return tuple(compile_rule(p) for p in patterns)


# RE2, not re: density scans a page's whole text with it once, and an alternation of a dozen
# phrase patterns costs re ~30 ms on a 50 KB page against ~1 ms through RE2's DFA
_NOTICE = compile_rule("|".join(f"(?:{p})" for p in _GENRE["notice_text"]))
_GENRE_PATTERNS = {key: _compile(_GENRE[key]) for key in ("cut_at", "drop_lines", "teaser_lines", "strip_prefix")}


@lru_cache(maxsize=64)
def _compiled_cached(rules: Rules) -> CompiledRules:
    return CompiledRules(
        drop_selectors=tuple(_GENRE["drop_selectors"]) + tuple(rules.drop_selectors),
        class_words=frozenset(w.lower() for w in _GENRE["drop_class_words"] + _GENRE["hidden_class_words"]),
        content_selector=rules.content_selector,
        # source rules first: a site's own marker is the most precise one
        cut_at=_compile_source(rules.cut_at) + _GENRE_PATTERNS["cut_at"],
        drop_lines=_compile_source(rules.drop_lines) + _GENRE_PATTERNS["drop_lines"],
        teaser_lines=_GENRE_PATTERNS["teaser_lines"],
        strip_prefix=_compile_source(rules.strip_prefix) + _GENRE_PATTERNS["strip_prefix"],
        timezone=rules.timezone,
        notice=_NOTICE,
        hidden_words=frozenset(w.lower() for w in _GENRE["hidden_class_words"]),
    )


def compiled(rules: Rules | None) -> CompiledRules:
    """Global genre rules plus the source's rules (None: global rules only)."""
    return _compiled_cached(rules or _EMPTY_RULES)
