"""URL normalisation and host rules: one canonical spelling per page, so the frontier de-duplicates.

Hand-written on urllib rather than courlan: courlan.normalize_url (1.4) keeps fragments, `spm`, `from`
and `share*` unless `strict=True`, and strict mode drops every parameter it does not know. Here the
rule is the other way round: keep every parameter (pagination `?page=2`, ids) except known trackers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urljoin, urlsplit, urlunsplit

HTTP_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

# Exact parameter names that only say where a click came from (web analytics, Chinese portals, WeChat).
TRACKING_PARAMS = frozenset(
    {
        "spm",
        "from",
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmkt",
        "mkt_tok",
        "vero_id",
        "wt.mc_id",
        "ref_src",
        "ref_url",
        "scm",
        "src_type",
        "chksm",
        "scene",
        "subscene",
        "ascene",
        "sessionid",
        "clicktime",
        "enterid",
        "devicetype",
        "nettype",
        "pass_ticket",
        "exportkey",
        "wx_header",
        "isappinstalled",
        "from_wecom",
        "timestamp_share",
    }
)
TRACKING_PREFIXES = ("utm_", "share", "sharer", "pk_", "hmsr", "hmpl", "hmcu", "hmkw", "hmci")

_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/:@!$'()*,;-._~"


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/".join(out) or "/"


def _upper_pct(text: str) -> str:
    return _PCT.sub(lambda m: m.group(0).upper(), text)


def normalize_url(url: str, base: str | None = None) -> str | None:
    """The canonical absolute form of `url` (resolved against `base`), or None if it is not http(s).

    Lowercases scheme and host, drops credentials (`user:pass@`), the fragment, default ports, tracking
    parameters and a trailing slash (except the root), sorts the query, percent-encodes non-ASCII characters the way browsers do,
    and resolves `.`/`..` segments. `?page=2` and other parameters survive.
    """
    if not url:
        return None
    url = url.strip().replace("\\", "/") if "\\" in url else url.strip()
    url = "".join(ch for ch in url if ch not in "\t\r\n")
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in HTTP_SCHEMES:
            return None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            return None
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal
        return None
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    # No `user:pass@`: a link on someone's page must not make us send credentials (httpx turns them into
    # an Authorization header), and the same page with and without them is one page.
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"

    path = _upper_pct(quote(parts.path, safe=_PATH_SAFE)) or "/"
    if not path.startswith("/"):
        path = "/" + path
    path = _remove_dot_segments(path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"

    query = ""
    if parts.query:
        pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)]
        pairs.sort()
        query = "&".join(f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}" for k, v in pairs)
    return urlunsplit((scheme, netloc, path, query, ""))


def without_userinfo(url: str) -> str:
    """`url` without `user:pass@` (anything else as it was). Raises ValueError on a malformed URL."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def host_of(url: str) -> str:
    """Lowercase hostname without port: what `allowed_hosts` lists."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def origin_of(url: str) -> str:
    """`scheme://host[:port]`: the unit robots.txt and politeness apply to (one server)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class HostRules:
    """Which hosts a crawl may touch. `None` allows every host; `.example.com` or `*.example.com`
    allows the domain and all its subdomains; anything else is an exact hostname."""

    def __init__(self, allowed_hosts: Iterable[str] | None) -> None:
        self.any = allowed_hosts is None
        self.exact: set[str] = set()
        self.suffixes: list[str] = []
        for raw in allowed_hosts or ():
            host = raw.strip().lower().rstrip(".")
            if host.startswith("*."):
                host = host[1:]
            if host.startswith("."):
                self.suffixes.append(host)
                self.exact.add(host[1:])
            elif host:
                self.exact.add(host)

    def allows(self, host: str) -> bool:
        if self.any:
            return True
        host = host.lower().rstrip(".")
        return host in self.exact or any(host.endswith(s) for s in self.suffixes)

    def allows_url(self, url: str) -> bool:
        return self.allows(host_of(url))
