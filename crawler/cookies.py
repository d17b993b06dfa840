"""A cookie jar with a ceiling. httpx keeps every Set-Cookie forever: 250 cookies a page over 60 pages
grew the Cookie header to 433,758 bytes (issue 13), which servers answer with 400 or 431, and which a
hostile site can use to make every later request heavy.

Bounds are per cookie domain (what a Cookie header for one host is built from): at most `max_count`
cookies and `max_bytes` of names plus values. A cookie that would pass either is dropped (counted in
`dropped`); one that replaces a cookie of the same domain, path and name is weighed without the old one,
so a site rotating its session cookie keeps working. `max_count=0` keeps no cookies at all. The whole
jar also stops at `MAX_TOTAL` cookies, whatever the domains (a wildcard host rule lets a site mint many).
"""

from __future__ import annotations

from http.cookiejar import Cookie, CookieJar

MAX_TOTAL = 2000


def _size(cookie: Cookie) -> int:
    return len(cookie.name) + len(cookie.value or "")


class BoundedCookieJar(CookieJar):
    def __init__(self, max_count: int, max_bytes: int) -> None:
        super().__init__()
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.dropped = 0

    def set_cookie(self, cookie: Cookie) -> None:
        # CookieJar's own (re-entrant) lock: extract_cookies may run for several responses at once
        with self._cookies_lock:  # type: ignore[attr-defined]  # CookieJar's private attribute, not in typeshed
            if not self._fits(cookie):
                self.dropped += 1
                return
            super().set_cookie(cookie)

    def _fits(self, cookie: Cookie) -> bool:
        if self.max_count <= 0 or _size(cookie) > self.max_bytes:
            return False
        by_path = self._cookies.get(cookie.domain, {})  # type: ignore[attr-defined]  # private, as above
        replaced = by_path.get(cookie.path, {}).get(cookie.name)
        others = [c for names in by_path.values() for c in names.values() if c is not replaced]
        if len(others) + 1 > self.max_count or sum(map(_size, others)) + _size(cookie) > self.max_bytes:
            return False
        return replaced is not None or len(self) < MAX_TOTAL
