"""Publication dates in the forms Chinese pages use, parsed by small regexes.

Why not htmldate: it reads `2023年05月12日` as 2023-01-01 and takes dates from sidebar link URLs
(FIELD-NOTES). Why not dateparser on every candidate: it is slow and guesses; the forms below are
the ones that occur, and anything else yields None, which is the honest answer.
Relative forms ("3小时前", "昨天 09:27") need the fetch time; without it they yield None, so
extraction stays deterministic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

__all__ = ["parse_date", "parse_iso", "from_unix"]

_ABS_CJK = re.compile(
    r"(?P<y>(?:19|20)\d{2})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日"
    r"(?:\s*(?:星期.|周.)?\s*(?P<H>\d{1,2})\s*[:：时]\s*(?P<M>\d{2})(?:\s*[:：分]\s*(?P<S>\d{2}))?)?"
)
_ABS_NUM = re.compile(
    r"(?<![\d/.\-])(?P<y>(?:19|20)\d{2})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?![\d/.\-])"
    r"(?:[T\s]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
)
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
_ABS_EN = re.compile(
    r"\b(?:(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d{2})"
    r"|(?P<d2>\d{1,2})\s+(?P<mon2>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+(?P<y2>(?:19|20)\d{2}))\b",
    re.IGNORECASE,
)
_AGO = re.compile(r"(?P<n>\d{1,3})\s*(?P<unit>秒|分钟|分|小时|个小时|天|日|周|个月)前")
_DAY_WORD = re.compile(r"(?P<word>今天|昨天|前天)\s*(?:(?P<H>\d{1,2})\s*[:：]\s*(?P<M>\d{2}))?")
_JUST_NOW = re.compile(r"刚刚")
_UNIT = {
    "秒": "seconds",
    "分钟": "minutes",
    "分": "minutes",
    "小时": "hours",
    "个小时": "hours",
    "天": "days",
    "日": "days",
    "周": "weeks",
}


def _tz(name: str) -> timezone | ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception:
        return ZoneInfo("Asia/Shanghai")


def _build(match: re.Match[str], tz) -> datetime | None:
    try:
        hour = int(match.group("H") or 0)
        minute = int(match.group("M") or 0)
        second = int(match.group("S") or 0)
        return datetime(
            int(match.group("y")), int(match.group("m")), int(match.group("d")), hour, minute, second, tzinfo=tz
        )
    except (ValueError, TypeError):
        return None


def _plausible(value: datetime, fetched_at: datetime | None) -> bool:
    if value.year < 1995:
        return False
    if fetched_at is not None and value > fetched_at + timedelta(days=2):
        return False
    return True


def parse_date(
    text: str, *, tz_name: str = "Asia/Shanghai", fetched_at: datetime | None = None, allow_relative: bool = True
) -> datetime | None:
    """The first date in a short text: absolute (年月日, 2023-05-12 10:20) or relative to fetched_at."""
    if not text:
        return None
    tz = _tz(tz_name)
    if fetched_at is not None and fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=UTC)
    candidates: list[tuple[int, datetime]] = []
    for pattern in (_ABS_CJK, _ABS_NUM):
        match = pattern.search(text)
        if match:
            value = _build(match, tz)
            if value is not None and _plausible(value, fetched_at):
                candidates.append((match.start(), value))
    match = _ABS_EN.search(text)
    if match:
        month = _MONTHS.get((match.group("mon") or match.group("mon2"))[:3].lower())
        try:
            value = datetime(
                int(match.group("y") or match.group("y2")),
                month or 0,
                int(match.group("d") or match.group("d2")),
                tzinfo=tz,
            )
        except (ValueError, TypeError):
            value = None
        if value is not None and _plausible(value, fetched_at):
            candidates.append((match.start(), value))
    if candidates:
        return min(candidates, key=lambda c: c[0])[1]
    if not allow_relative or fetched_at is None:
        return None
    local_now = fetched_at.astimezone(tz)
    match = _AGO.search(text)
    if match:
        n = int(match.group("n"))
        unit = match.group("unit")
        if unit == "个月":
            return (local_now - timedelta(days=30 * n)).replace(microsecond=0)
        return (local_now - timedelta(**{_UNIT[unit]: n})).replace(microsecond=0)
    match = _DAY_WORD.search(text)
    if match:
        back = {"今天": 0, "昨天": 1, "前天": 2}[match.group("word")]
        day = local_now - timedelta(days=back)
        hour = int(match.group("H") or 0)
        minute = int(match.group("M") or 0)
        if hour > 23 or minute > 59:
            return None
        return day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if _JUST_NOW.search(text):
        return local_now.replace(microsecond=0)
    return None


def parse_iso(value: str, tz_name: str = "Asia/Shanghai") -> datetime | None:
    """A machine-readable date from a meta tag or <time datetime> (ISO 8601, or a 年月日 form)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return parse_date(value, tz_name=tz_name, allow_relative=False)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_tz(tz_name))
    if parsed.year < 1995:
        return None
    return parsed


def from_unix(value: str) -> datetime | None:
    """WeChat's `var ct = "1683858000"` (seconds since the epoch)."""
    try:
        seconds = int(value)
        if seconds < 800_000_000:
            return None
        return datetime.fromtimestamp(seconds, tz=ZoneInfo("Asia/Shanghai"))
    except (ValueError, OverflowError, OSError):
        return None
