"""`sieve eval`'s tables: per page (optional), per dataset and extractor with the best-of oracle,
and the worst pages of each dataset with the cause category that can be told (flows/causes.py)."""

from __future__ import annotations

from typing import Any

from flows.evaluate import EvalReport

__all__ = ["print_report"]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(report: EvalReport, console: Any, *, per_page: bool = True, worst: int = 8) -> None:
    from rich.table import Table

    if per_page:
        table = Table(title="per page", show_lines=False)
        for column in ("dataset", "page", "extractor", "P", "R", "F1", "leaked", "title", "date", "note"):
            table.add_column(column, justify="right" if column in ("P", "R", "F1", "leaked") else "left")
        for r in report.results:
            mark = lambda ok: "-" if ok is None else ("ok" if ok else "WRONG")  # noqa: E731
            note = r.cause
            if r.rejection_ok is not None:
                note = "rejected ok" if r.rejection_ok else "NOT rejected"
            elif r.got_rejection and not note:
                note = f"rejected: {r.got_rejection}"
            table.add_row(
                r.dataset,
                r.page_id,
                r.extractor,
                _fmt(r.precision),
                _fmt(r.recall),
                _fmt(r.f1),
                str(len(r.leaked)),
                mark(r.title_ok),
                mark(r.date_ok),
                note,
            )
        console.print(table)

    table = Table(title="summary (golden: characters; public sets: bag-of-tokens)")
    for column in (
        "dataset",
        "extractor",
        "pages",
        "P",
        "R",
        "F1",
        "leaked",
        "titles",
        "dates",
        "non-articles",
        "pages/s",
    ):
        table.add_column(column, justify="left" if column in ("dataset", "extractor") else "right")
    for dataset in report.datasets():
        summaries = [s for s in report.summaries() if s.dataset == dataset]
        for s in summaries:
            table.add_row(
                s.dataset,
                s.extractor,
                str(s.pages),
                _fmt(s.precision),
                _fmt(s.recall),
                _fmt(s.f1),
                str(s.leaked),
                f"{s.titles_ok}/{s.titles_checked}" if s.titles_checked else "-",
                f"{s.dates_ok}/{s.dates_checked}" if s.dates_checked else "-",
                f"{s.rejections_ok}/{s.rejections_checked}" if s.rejections_checked else "-",
                f"{s.pages_per_second:.1f}",
            )
        oracle = report.oracle(dataset)
        if oracle is not None:
            contenders = "+".join(s.extractor for s in summaries if s.extractor != "sieve+learned")
            table.add_row(
                dataset,
                f"best of {contenders}",
                str(summaries[0].pages),
                "",
                "",
                _fmt(oracle),
                "",
                "",
                "",
                "",
                "",
                style="dim",
            )
    console.print(table)

    if worst <= 0:
        return
    for dataset in report.datasets():
        rows = [r for r in report.worst(dataset, worst) if r.cause]
        if not rows:
            continue
        others = {(r.page_id, r.extractor): r.f1 for r in report.results if r.dataset == dataset}
        names = sorted({r.extractor for r in report.results if r.dataset == dataset} - {"sieve"})
        table = Table(title=f"{dataset}: worst pages for sieve")
        for column in ("page", "F1", "P", "R", *names, "cause"):
            table.add_column(column, justify="left" if column in ("page", "cause") else "right", overflow="fold")
        for r in rows:
            table.add_row(
                r.page_id[:60],
                _fmt(r.f1),
                _fmt(r.precision),
                _fmt(r.recall),
                *(_fmt(others.get((r.page_id, name))) for name in names),
                r.cause,
            )
        console.print(table)
