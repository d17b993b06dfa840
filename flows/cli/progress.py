"""The live progress bar of a CLI run (stderr, terminals only), fed by the pipeline's Progress snapshots."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from flows.cli.common import err

if TYPE_CHECKING:
    from pipeline.summary import Progress


class RunBar:
    """A rich progress bar fed by the pipeline's Progress snapshots (stderr, terminals only)."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        # rich's Progress (the bar) under another name: `Progress` here is the pipeline's snapshot
        from rich.progress import BarColumn, Progress as ProgressBar, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.label = label
        self.show = not quiet and sys.stderr.isatty()
        self.progress = ProgressBar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            console=err,
            disable=not self.show,
            transient=True,
        )
        self.task = self.progress.add_task(f"{label}: starting Prefect…", total=None)
        self.last: Progress | None = None

    def say(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.label}: {text}")

    def update(self, p: Progress) -> None:
        self.last = p
        pages = p.fetched + p.failed
        parts = [
            p.phase,
            f"{pages}/{p.total} pages" if p.total else f"{pages} pages",
            f"{p.pages_per_s:.0f}/s",
            f"{p.extracted} extracted",
            f"{p.failed} failed",
            f"{p.queued} queued",
        ]
        if p.uncommitted:
            parts.append(f"{p.uncommitted} rows uncommitted")
        self.progress.update(
            self.task,
            description=f"{self.label}: " + " · ".join(parts),
            total=p.total,
            completed=pages if p.total else 0,
        )
