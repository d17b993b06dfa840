"""Regexes that come from users (a source's cut_at, drop_lines, strip_prefix) run on RE2.

Why: Python's `re` backtracks, so a rule like `^(a+)+$` takes seconds on a line of 26 a's and
doubles per character; RE2 (google-re2) matches in time linear in the line. RE2 refuses what it
cannot do in linear time (backreferences, lookaround); such a pattern is refused when the config
loads, with its key and the reason. Matching is case-insensitive, as it always was.

The genre's built-in rules (genre.yaml) stay on `re`: they are ours, reviewed, have no nested
quantifiers (a test runs them on hostile lines), and a search costs 0.1 us there against 1.8 us
through RE2's binding, on the ~1,000 edge-line searches a page takes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

__all__ = ["compile_rule", "RuleRegexError", "find_all_text"]

_OPTIONS = re2.Options()
_OPTIONS.case_sensitive = False
_OPTIONS.log_errors = False  # the error comes back as an exception; no absl line on stderr


class RuleRegexError(ValueError):
    """A rule pattern RE2 cannot take."""


def compile_rule(pattern: str) -> Any:
    """The pattern compiled by RE2 (case-insensitive); RuleRegexError says why not."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RuleRegexError(
            f"invalid regex {pattern!r} (rules run on RE2, which has no backreferences or lookaround): {reason}"
        ) from None


def find_all_text(pattern: Any, text: str) -> set[str]:
    """The distinct texts `pattern` matches in `text`. An RE2 pattern runs on the UTF-8 bytes:
    on a str the binding maps every match's byte offsets back to characters, which costs as much
    as the search itself on a page of Chinese text."""
    binary = _utf8_twin(pattern) if isinstance(pattern, re2._Regexp) else None
    if binary is None:
        return {match.group(0) for match in pattern.finditer(text)}
    return {match.group(0).decode("utf-8") for match in binary.finditer(text.encode("utf-8"))}


@lru_cache(maxsize=16)
def _utf8_twin(pattern: Any) -> Any:
    source = pattern.pattern
    return re2.compile(source.encode("utf-8") if isinstance(source, str) else source, pattern.options)
