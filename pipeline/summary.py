"""What a run did: one object, rendered three ways (the CLI's table, the Prefect artifact, the
`crawl_runs.counts` JSON), so the three never disagree.

Counts move only when a window commits: a retried window counts once, and a run stopped by Ctrl-C
or a crash reports exactly what the warehouse holds from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from outcomes import INTERNAL_ERROR

OUTSIDE_WINDOW = "outside_window"


@dataclass
class RunSummary:
    kind: str = "crawl"
    source: str = ""
    run_id: str | None = None
    status: str = "running"
    fetched: int = 0  # pages fetched (2xx)
    unchanged: int = 0  # 304 Not Modified
    failed: int = 0  # fetches that failed, by kind in `failures`
    failures: Counter = field(default_factory=Counter)
    discovered: int = 0  # URLs new to the frontier
    extracted: int = 0  # pages fetched by this run and extracted
    reextracted: int = 0  # stored pages extracted again (stale versions, or left by a crashed run)
    articles_new: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0  # pages without an article (outside_window included), by reason below
    rejections: Counter = field(default_factory=Counter)
    windows: int = 0  # commits
    duration_s: float = 0.0
    error: str | None = None

    # ---- what happened, in words ---------------------------------------------------------------
    @property
    def internal_errors(self) -> int:
        return self.failures.get(INTERNAL_ERROR, 0) + self.rejections.get(INTERNAL_ERROR, 0)

    def notes(self) -> list[str]:
        """Sentences for what the numbers alone would leave a reader wondering about."""
        notes = []
        if self.reextracted:
            notes.append(
                f"{self.reextracted} stored pages were extracted again without fetching: their extractor "
                "or rules version was stale, or an earlier run stored them and stopped before extracting"
            )
        if self.rejections.get(OUTSIDE_WINDOW):
            notes.append(
                f"{self.rejections[OUTSIDE_WINDOW]} articles were published outside --since/--until: "
                "their pages are stored, `sieve reextract --all` takes them later"
            )
        if self.internal_errors:
            notes.append(f"{self.internal_errors} pages hit a bug in sieve (logged with its traceback)")
        if self.status == "cancelled":
            notes.append("interrupted: what is counted here is committed; run again to resume")
        if self.kind == "crawl" and not (self.fetched or self.unchanged or self.failed or self.reextracted):
            notes.append("nothing was due: every known page was fetched recently (revisit_after_hours)")
        return notes

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) in reading order: the CLI table and the artifact both render these."""
        failures = ", ".join(f"{kind} {n}" for kind, n in sorted(self.failures.items()))
        no_article = self.rejected - self.rejections.get(OUTSIDE_WINDOW, 0)
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.rejections.items()) if r != OUTSIDE_WINDOW)
        rows = [
            ("pages fetched", str(self.fetched)),
            ("unchanged (304)", str(self.unchanged)),
            ("failed", f"{self.failed} ({failures})" if failures else str(self.failed)),
            ("new URLs discovered", str(self.discovered)),
            ("pages extracted", str(self.extracted)),
            ("stored pages re-extracted", str(self.reextracted)),
            ("articles new", str(self.articles_new)),
            ("articles updated", str(self.articles_updated)),
            ("articles unchanged", str(self.articles_unchanged)),
            ("duplicates", str(self.duplicates)),
            ("pages without an article", f"{no_article} ({reasons})" if reasons else str(no_article)),
        ]
        if self.rejections.get(OUTSIDE_WINDOW) or self.kind == "backfill":
            rows.append(("outside --since/--until", str(self.rejections.get(OUTSIDE_WINDOW, 0))))
        rows += [("status", self.status), ("duration (s)", f"{self.duration_s:.2f}")]
        return rows

    def markdown(self) -> str:
        lines = [f"# {self.kind}: {self.source}", "", "| measure | value |", "| --- | --- |"]
        lines += [f"| {label} | {value} |" for label, value in self.rows()]
        lines.append(f"| warehouse run_id | {self.run_id} |")
        lines += [""] + [f"- {note}" for note in self.notes()]
        return "\n".join(lines)

    # ---- as data ---------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """Flat and JSON-ready: `crawl_runs.counts`, the flows' return value. `from_dict` reads it back."""
        flat: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k not in ("failures", "rejections")}
        flat.update({f"failed_{kind}": n for kind, n in sorted(self.failures.items())})
        flat.update({f"rejected_{reason}": n for reason, n in sorted(self.rejections.items())})
        flat["notes"] = self.notes()
        return flat

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("failures", "rejections")}
        summary = cls(**known)
        summary.failures = Counter({k.removeprefix("failed_"): v for k, v in data.items() if k.startswith("failed_")})
        summary.rejections = Counter(
            {k.removeprefix("rejected_"): v for k, v in data.items() if k.startswith("rejected_")}
        )
        return summary


@dataclass(frozen=True)
class Progress:
    """A live snapshot for a progress bar (uncommitted work included, unlike RunSummary)."""

    phase: str  # "crawling", "stopping", "waiting for the warehouse: ..."
    fetched: int = 0
    failed: int = 0
    extracted: int = 0
    committed_windows: int = 0
    queued: int = 0  # URLs claimed and pages waiting for a worker
    uncommitted: int = 0  # rows waiting for the writer's next commit
    total: int | None = None  # pages this run will fetch, when known (max_pages)
    elapsed_s: float = 0.0

    @property
    def pages_per_s(self) -> float:
        return (self.fetched + self.failed) / self.elapsed_s if self.elapsed_s > 0 else 0.0
