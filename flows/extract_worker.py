"""What runs in the extraction worker processes. Kept tiny: a spawned worker imports only this and
`extractors` (about a second), not the crawler, warehouse or Prefect."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from extractors import Rules, extract


def warm_up() -> bool:
    """Submitted once per worker at start, so the import cost overlaps the first fetches."""
    return True


def extract_chunk(pages: Sequence[tuple[str, str, datetime]], rules: Rules) -> list[tuple[str, Any]]:
    """A chunk of pages per call keeps pickling overhead small."""
    return [(url, extract(html, url, rules, fetched_at=fetched_at)) for url, html, fetched_at in pages]
