"""Text rules at the head and tail of the article: cut_at, drop_lines, strip_prefix, with a cap.

Why head and tail only: boilerplate of this genre sits around the article (banner, breadcrumb,
info line before it; calls-to-action, 搜索建议, disclaimers, link lists after it). A rule that fires
in the middle is far more likely to hit a real sentence. Why a cap: a rule that would remove more
than a third of the text is matching something it was not written for; the page is flagged
"rules_capped" and its text kept, rather than mangled.

Besides the regexes, a line at an edge goes when it is a link (most of its text is link text on the
page, or it is the text of a link elsewhere), a notice (the genre's notice vocabulary), the title
again, or a teaser that a later paragraph repeats in full.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from extractors.genre import CompiledRules

__all__ = ["TrimResult", "apply_text_rules", "link_key", "key", "CAP_FRACTION", "SENTENCE_END"]

CAP_FRACTION = 1 / 3
SENTENCE_END = re.compile(r"[。！？!?…」”\"')）.]$")
_MAX_GAP_LINES = 2
_MAX_GAP_CHARS = 24
_LINK_LINE = 0.5
_NOTICE_MAX_CHARS = 300
_TEASER_MIN_CHARS = 20
_TEASER_HEAD_LINES = 3


@dataclass(slots=True)
class TrimResult:
    lines: list[str]
    head_removed: list[str] = field(default_factory=list)
    tail_removed: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (rule, line), for traces


def _first_match(line: str, patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
    return next((p for p in patterns if p.search(line)), None)


def _is_gap(line: str) -> bool:
    """A short label-like line (an ID, a name) that may sit between boilerplate lines."""
    return len(line) <= _MAX_GAP_CHARS and not SENTENCE_END.search(line)


def _edge_run(lines: list[str], why: Callable[[int], str | None], from_end: bool) -> int:
    """How many lines at one edge are boilerplate: junk lines, with at most two short label-like
    lines between junk lines (never counted when no junk line lies beyond them)."""
    order = range(len(lines) - 1, -1, -1) if from_end else range(len(lines))
    run = 0
    gaps = 0
    for count, index in enumerate(order, start=1):
        if why(index) is not None:
            run = count
            gaps = 0
        elif _is_gap(lines[index]) and gaps < _MAX_GAP_LINES:
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
_TRAILING_SOURCE = re.compile(r"\s*[【(\[][^【】()\[\]]{1,12}[】)\]]\s*$")
_KEY_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


def link_key(text: str) -> str:
    """Comparable form of a line or a link text: no bullet, no trailing date or bracketed source
    ("headline【城市晚报】2023-01-12"), no spaces, NFKC."""
    text = unicodedata.normalize("NFKC", text)
    text = _BULLET.sub("", text, count=1)
    for _ in range(2):
        if text and (text[-1].isdigit() or text[-1] in "前日)）"):
            # only the last characters can hold a trailing date; searching the whole line is slow
            text = text[:-40] + _TRAILING_TIME.sub("", text[-40:])
        if text and text[-1] in "】)]":
            text = text[:-20] + _TRAILING_SOURCE.sub("", text[-20:])
    return "".join(text.split()).lower()


def key(text: str) -> str:
    """Letters and digits only, lower-cased: "the same line" for titles and repeats."""
    return _KEY_DROP.sub("", text).lower()


def _teasers(lines: list[str]) -> set[int]:
    """Head lines (a summary, a lead-in) whose text a later, longer line repeats in full."""
    found: set[int] = set()
    keys: list[str] | None = None
    for index in range(min(_TEASER_HEAD_LINES, len(lines) - 1)):
        line = lines[index].rstrip()
        needle = key(line.rstrip(".…。 "))
        if len(needle) < _TEASER_MIN_CHARS:
            continue
        cut_short = line.endswith(("…", "..."))  # a paragraph said twice in full is real (the seed has one)
        keys = keys if keys is not None else [key(later) for later in lines]
        if any(needle in later and (cut_short or len(later) > len(needle)) for later in keys[index + 1 :]):
            found.add(index)
    return found


def apply_text_rules(
    lines: list[str],
    rules: CompiledRules,
    title: str | None = None,
    link_keys: frozenset[str] = frozenset(),
    shares: list[float] | None = None,
) -> TrimResult:
    """Trim boilerplate from the head and tail of the article's lines.

    `shares` (one per line) is the share of each line's text that is link text on the page;
    `link_keys` are the page's link texts (see link_key). Teaser lines, link lines and notices
    (the genre's notice vocabulary: a disclaimer longer than a short article) are unmistakable and
    do not count against the cap.
    """
    pairs = [
        (line.strip(), shares[i] if shares is not None and i < len(shares) else 0.0)
        for i, line in enumerate(lines)
        if line.strip()
    ]
    total = _chars([line for line, _ in pairs])
    if not pairs:
        return TrimResult([])
    flags: list[str] = []
    removed: list[tuple[str, str]] = []
    title_key = key(title) if title else None

    # 1. strip_prefix: site banner glued to the first line
    banner: list[str] = []
    for pattern in rules.strip_prefix:
        if not pairs:
            break
        first, share = pairs[0]
        match = pattern.match(first)
        if match and match.end() > 0:
            banner.append(first[: match.end()])
            removed.append((f"strip_prefix {pattern.pattern}", first[: match.end()]))
            remainder = first[match.end() :].strip()
            pairs = ([(remainder, share)] if remainder else []) + pairs[1:]
    work = [line for line, _ in pairs]
    link_share = [share for _, share in pairs]

    def certain(index: int) -> str | None:
        line = work[index]
        pattern = _first_match(line, rules.teaser_lines)
        if pattern is not None:
            return f"teaser {pattern.pattern}"
        if link_share[index] >= _LINK_LINE and not SENTENCE_END.search(line):
            return "link line"
        if link_keys:
            line_key = link_key(line)
            if len(line_key) >= 4 and line_key in link_keys:
                return "link text"
        return None

    def why(index: int) -> str | None:
        line = work[index]
        if rules.notice is not None and len(line) <= _NOTICE_MAX_CHARS and rules.notice.search(line):
            return "notice"
        pattern = _first_match(line, rules.drop_lines)
        if pattern is not None:
            return f"drop_lines {pattern.pattern}"
        if title_key is not None and key(line) == title_key:
            return "title repeated"
        return certain(index)

    # 2. cut_at: a marker line and everything after it
    cut_index = next((i for i, line in enumerate(work) if i > 0 and _first_match(line, rules.cut_at)), None)
    cut_lines: list[str] = []
    if cut_index is not None:
        cut_lines = work[cut_index:]
        uncertain = _chars([ln for i, ln in enumerate(cut_lines[1:], start=cut_index + 1) if why(i) is None])
        if uncertain > CAP_FRACTION * total:
            flags.append("rules_capped")
            cut_lines = []
        else:
            marker = _first_match(work[cut_index], rules.cut_at)
            removed.extend((f"cut_at {marker.pattern if marker else ''}", ln) for ln in cut_lines)
            work, link_share = work[:cut_index], link_share[:cut_index]

    # 3. teasers the body repeats, drop_lines, notices, links and the title at the head and the tail
    teasers = _teasers(work)
    head_why = lambda i: "teaser repeated in the body" if i in teasers else why(i)  # noqa: E731
    head = _edge_run(work, head_why, from_end=False)
    head_reasons = [head_why(i) for i in range(head)]
    head_lines = work[:head]
    tail_offset = head
    rest = work[head:]
    tail = _edge_run(rest, lambda i: why(i + tail_offset), from_end=True)
    tail_lines = rest[len(rest) - tail :] if tail else []
    tail_reasons = [why(i + tail_offset) for i in range(len(rest) - tail, len(rest))]
    work = rest[: len(rest) - tail]

    def uncertain_chars(lines_: list[str], reasons: list[str | None]) -> int:
        return sum(
            len(ln)
            for ln, r in zip(lines_, reasons, strict=True)
            if not (r and (r.startswith(("teaser", "link", "notice"))))
        )

    removed_by_lines = uncertain_chars(head_lines, head_reasons) + uncertain_chars(tail_lines, tail_reasons)
    if work and removed_by_lines > CAP_FRACTION * total:
        # give back the line rules; keep banner and cut, flag the page
        flags.append("rules_capped")
        work = head_lines + work + tail_lines
        head_lines, tail_lines = [], []
    else:
        removed.extend((r or "between boilerplate lines", ln) for ln, r in zip(head_lines, head_reasons, strict=True))
        removed.extend((r or "between boilerplate lines", ln) for ln, r in zip(tail_lines, tail_reasons, strict=True))
    if not work:
        flags.append("all_boilerplate")
    return TrimResult(work, banner + head_lines, tail_lines + cut_lines, sorted(set(flags)), removed)
