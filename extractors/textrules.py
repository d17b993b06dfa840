"""Text rules at the head and tail of the article: cut_at, drop_lines, strip_prefix, with a cap.

Why head and tail only: boilerplate of this genre sits around the article (banner, breadcrumb,
info line before it; calls-to-action, 搜索建议, disclaimers after it). A rule that fires in the
middle is far more likely to hit a real sentence. Why a cap: a rule that would remove more than a
third of the text is matching something it was not written for; the page is flagged
"rules_capped" and its text kept, rather than mangled.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from extractors.genre import CompiledRules

__all__ = ["TrimResult", "apply_text_rules", "link_key", "CAP_FRACTION"]

CAP_FRACTION = 1 / 3
_SENTENCE_END = re.compile(r"[。！？!?…」”\"')）.]$")
_MAX_GAP_LINES = 2
_MAX_GAP_CHARS = 24


@dataclass(slots=True)
class TrimResult:
    lines: list[str]
    head_removed: list[str] = field(default_factory=list)
    tail_removed: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def _matches(line: str, patterns: tuple[re.Pattern[str], ...]) -> bool:
    return any(p.search(line) for p in patterns)


def _is_gap(line: str) -> bool:
    """A short label-like line (an ID, a name) that may sit between boilerplate lines."""
    return len(line) <= _MAX_GAP_CHARS and not _SENTENCE_END.search(line)


def _edge_run(lines: list[str], is_junk, from_end: bool) -> int:
    """How many lines at one edge are boilerplate: junk lines, with at most two short label-like
    lines between junk lines (never counted when no junk line lies beyond them)."""
    order = range(len(lines) - 1, -1, -1) if from_end else range(len(lines))
    run = 0
    gaps = 0
    for count, index in enumerate(order, start=1):
        line = lines[index]
        if is_junk(line):
            run = count
            gaps = 0
        elif _is_gap(line) and gaps < _MAX_GAP_LINES:
            gaps += 1
        else:
            break
    return run


def _chars(lines: list[str]) -> int:
    return sum(len(line) for line in lines)


_BULLET = re.compile(r"^\s*([-*•·»>]|\d{1,2}[.、])\s*")
_TRAILING_TIME = re.compile(
    r"\s*(\(?\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(\s*\d{1,2}:\d{2}(:\d{2})?)?\)?|\d{1,2}-\d{1,2}(\s*\d{1,2}:\d{2})?"
    r"|\d+\s*(分钟|小时|天)前|评论\s*\d+)\s*$"
)


def link_key(text: str) -> str:
    """Comparable form of a line or a link text: no bullet, no trailing date, no spaces, NFKC."""
    text = unicodedata.normalize("NFKC", text)
    text = _BULLET.sub("", text, count=1)
    if text and (text[-1].isdigit() or text[-1] in "前日)）"):
        # only the last characters can hold a trailing date; searching the whole line is slow
        text = text[:-40] + _TRAILING_TIME.sub("", text[-40:])
    return "".join(text.split()).lower()


def apply_text_rules(lines: list[str], rules: CompiledRules, title: str | None = None,
                     link_keys: frozenset[str] = frozenset()) -> TrimResult:
    """Trim boilerplate from the head and tail of the article's lines.

    `link_keys` are the page's link texts (see link_key): a line that is nothing but a link
    (related stories, prev/next, sidebar lists) is boilerplate at the edges of the text.
    Teaser lines and link lines are unmistakable and do not count against the cap.
    """
    lines = [line.strip() for line in lines if line.strip()]
    total = _chars(lines)
    if not lines:
        return TrimResult(lines)
    flags: list[str] = []
    title_key = _key(title) if title else None

    def is_certain(line: str) -> bool:
        if _matches(line, rules.teaser_lines):
            return True
        if link_keys:
            key = link_key(line)
            return len(key) >= 4 and key in link_keys
        return False

    def is_junk(line: str) -> bool:
        return (
            _matches(line, rules.drop_lines)
            or (title_key is not None and _key(line) == title_key)
            or is_certain(line)
        )

    # 1. strip_prefix: site banner glued to the first line
    work = list(lines)
    banner: list[str] = []
    for pattern in rules.strip_prefix:
        if not work:
            break
        match = pattern.match(work[0])
        if match and match.end() > 0:
            banner.append(work[0][: match.end()])
            rest = work[0][match.end():].strip()
            work = ([rest] if rest else []) + work[1:]

    # 2. cut_at: a marker line and everything after it
    cut_index = None
    for index, line in enumerate(work):
        if index > 0 and _matches(line, rules.cut_at):
            cut_index = index
            break
    cut_lines: list[str] = []
    if cut_index is not None:
        cut_lines = work[cut_index:]
        uncertain = _chars([ln for ln in cut_lines[1:] if not is_junk(ln)])
        if uncertain > CAP_FRACTION * total:
            flags.append("rules_capped")
        else:
            work = work[:cut_index]

    # 3. drop_lines (and the title) at the head and the tail
    head = _edge_run(work, is_junk, from_end=False)
    head_lines = work[:head]
    work = work[head:]
    tail = _edge_run(work, is_junk, from_end=True)
    tail_lines = work[len(work) - tail:] if tail else []
    work = work[: len(work) - tail]

    removed_by_lines = sum(len(ln) for ln in head_lines + tail_lines if not is_certain(ln))
    if work and removed_by_lines > CAP_FRACTION * total:
        # give back the line rules; keep banner and cut, flag the page
        flags.append("rules_capped")
        work = head_lines + work + tail_lines
        head_lines, tail_lines = [], []
    if not work:
        flags.append("all_boilerplate")
    removed_tail = tail_lines + (cut_lines if cut_index is not None and "rules_capped" not in flags else [])
    return TrimResult(work, banner + head_lines, removed_tail, sorted(set(flags)))


_KEY_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


def _key(text: str) -> str:
    return _KEY_DROP.sub("", text).lower()
