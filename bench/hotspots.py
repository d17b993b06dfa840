"""Turn a pyinstrument session into the few lines a reader needs: where the time goes.

Inclusive time per function (counted once per stack, so recursion does not inflate it), self time per
function, and self time per package (sieve's layers, trafilatura, lxml, selectolax, duckdb, httpx, ...).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

_PACKAGES = ("extractors", "crawler", "warehouse", "flows", "bench", "trafilatura", "htmldate", "courlan",
             "justext", "lxml", "selectolax", "duckdb", "pyarrow", "httpx", "httpcore", "anyio", "h11", "asyncio",
             "concurrent", "multiprocessing", "prefect", "pydantic", "dateparser", "charset_normalizer", "yaml",
             "selectors", "re", "unicodedata", "hashlib", "json", "threading", "scrapy", "twisted")


def package_of(path: str | None) -> str:
    if not path:
        return "(native)"
    norm = path.replace("\\", "/")
    for name in _PACKAGES:
        if f"/{name}/" in norm or norm.endswith(f"/{name}.py") or norm.startswith(f"{name}/"):
            return name
    if "<built-in>" in norm or norm.startswith("<"):
        return "(native)"
    return "other"


def hotspots(session: Any, top: int = 15) -> dict[str, Any]:
    root = session.root_frame()
    if root is None:
        return {"total_s": 0.0, "inclusive": [], "self": [], "packages": []}
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()

    def key(frame: Any) -> str:
        short = (frame.file_path_short or frame.file_path or "?")
        return f"{frame.function} ({short}:{frame.line_no})"

    def walk(frame: Any, stack: frozenset[str], parent: Any) -> None:
        if str(frame.function).startswith("["):   # pyinstrument's synthetic "[self]"/"[await]" frames
            owner = parent if parent is not None else frame
            own[key(owner)] += frame.time
            packages[package_of(owner.file_path)] += frame.time
            return
        k = key(frame)
        if k not in stack:
            inclusive[k] += frame.time
        child_time = sum(child.time for child in frame.children)
        self_time = max(0.0, frame.time - child_time)
        own[k] += self_time
        packages[package_of(frame.file_path)] += self_time
        for child in frame.children:
            walk(child, stack | {k}, frame)

    walk(root, frozenset(), None)
    total = root.time or 1e-9

    def listing(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(t, 3), round(100 * t / total, 1)] for name, t in counter.most_common(top)]

    return {"total_s": round(root.time, 3), "inclusive": listing(inclusive), "self": listing(own),
            "packages": listing(packages)}
