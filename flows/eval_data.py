"""The datasets `sieve eval` scores (flows/evaluate.py): their pages, read from either layout.

* our golden corpus (tests/golden/): `name.html` (bytes, any declared charset) beside `name.txt`
  (expected clean text) and `name.json` ({"url", "title", "published_at", "source_rules",
  "boilerplate": [...], "rejection": null | "list_page" ...});
* the public sets in ../shared/evaldata/ (`html/<id>.html` + `gold/<id>.txt`).

Every page is decoded from its bytes by crawler/decode.py, the decoder every crawled page goes
through, so a decoding bug shows in the scores too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.decode import decode_html
from extractors import Rules

__all__ = ["EvalPage", "load_dataset", "FETCHED_AT"]

FETCHED_AT = datetime.fromisoformat("2026-11-27T12:00:00+08:00")  # fixed "now" for relative dates


@dataclass(frozen=True, slots=True)
class EvalPage:
    dataset: str
    page_id: str
    html: str
    expected_text: str | None  # None: the page is not an article (expect a rejection)
    url: str = ""
    title: str | None = None
    published_at: str | None = None  # ISO 8601, or None when the page carries no date
    rules: Rules | None = None
    boilerplate: tuple[str, ...] = ()
    metric: str = "chars"  # "chars" (golden) or "tokens" (public sets)
    check_meta: bool = True
    fetched_at: datetime = FETCHED_AT  # "now" for relative dates ("3小时前")
    decoding: str = ""  # what the decoder had to do beyond a clean decode ("replaced", "repaired")


def load_dataset(directory: Path) -> list[EvalPage]:
    """Pages of a golden folder or of a public set (html/ + gold/)."""
    directory = Path(directory)
    if (directory / "html").is_dir() and (directory / "gold").is_dir():
        return _load_public(directory)
    return _load_golden(directory)


def _decoding_note(decoded) -> str:
    notes = [
        note
        for flag, note in (
            (decoded.repaired, "mojibake repaired"),
            (decoded.replaced, "replacement characters"),
            (bool(decoded.undecodable), "undecodable"),
        )
        if flag
    ]
    return f"{decoded.encoding}: {', '.join(notes)}" if notes else ""


def _page(dataset: str, html_path: Path, **expected: Any) -> EvalPage:
    """One page of a set: its HTML decoded as a fetch would decode it, with what the set expects of it."""
    decoded = decode_html(html_path.read_bytes())
    return EvalPage(
        dataset=dataset, page_id=html_path.stem, html=decoded.text, decoding=_decoding_note(decoded), **expected
    )


def _load_public(directory: Path) -> list[EvalPage]:
    pages = []
    for html_path in sorted((directory / "html").glob("*.html")):
        gold = directory / "gold" / f"{html_path.stem}.txt"
        if not gold.exists():
            continue
        pages.append(
            _page(
                directory.name,
                html_path,
                expected_text=gold.read_text(encoding="utf-8"),
                metric="tokens",
                check_meta=False,
            )
        )
    return pages


def _load_golden(directory: Path) -> list[EvalPage]:
    pages = []
    for html_path in sorted(directory.glob("*.html")):
        sidecar = html_path.with_suffix(".json")
        spec = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
        text_path = html_path.with_suffix(".txt")
        expected = text_path.read_text(encoding="utf-8") if text_path.exists() and not spec.get("rejection") else None
        source_rules = spec.get("source_rules")
        pages.append(
            _page(
                directory.name,
                html_path,
                expected_text=expected,
                url=spec.get("url", ""),
                title=spec.get("title"),
                published_at=spec.get("published_at"),
                rules=Rules(**source_rules) if source_rules else None,
                boilerplate=tuple(spec.get("boilerplate", ())),
                metric="chars",
                fetched_at=datetime.fromisoformat(spec["fetched_at"]) if spec.get("fetched_at") else FETCHED_AT,
            )
        )
    return pages
