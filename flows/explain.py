"""`sieve extract --explain`: print what the extractor decided for one page, from its Trace.

The extractor fills the trace (extractors/trace.py, plain data); this module only renders it:
the decoding used, the candidate blocks and their scores, the choice and why, and every block or
line that was removed with the stage and rule that removed it.
"""

from __future__ import annotations

from typing import Any

from extractors.trace import Trace

__all__ = ["render_trace", "trace_record"]


def trace_record(trace: Trace) -> dict[str, Any]:
    """The trace as JSON-ready data (for `--explain --json`)."""
    return {
        "decoding": trace.decoding,
        "candidates": [
            {"name": c.name, "where": c.where, "chars": c.chars, "score": c.score, "detail": c.detail}
            for c in trace.candidates
        ],
        "chosen": trace.chosen,
        "reason": trace.reason,
        "steps": [{"stage": stage, "message": message} for stage, message in trace.steps],
        "removed": [{"stage": r.stage, "rule": r.rule, "text": r.text} for r in trace.removed],
    }


def render_trace(trace: Trace, console: Any, *, width: int = 100) -> None:
    """Rich tables: decoding, candidates, the choice, removals (grouped by stage, in order)."""
    from rich.table import Table

    console.print(f"[bold]decoding[/bold]: {trace.decoding or '(given as text)'}", highlight=False)
    table = Table(title="candidates", show_lines=False)
    for column in ("candidate", "where", "chars", "score", "detail"):
        table.add_column(column, justify="right" if column in ("chars", "score") else "left", overflow="fold")
    for c in trace.candidates:
        table.add_row(c.name, c.where, str(c.chars), "-" if c.score is None else f"{c.score:.0f}", c.detail)
    console.print(table)
    for stage, message in trace.steps:
        console.print(f"[bold]{stage}[/bold]: {message}", highlight=False)
    if trace.chosen:
        console.print(f"[bold]chosen[/bold]: {trace.chosen} ({trace.reason})", highlight=False)
    removed = Table(title=f"removed ({len(trace.removed)})", show_lines=False)
    for column in ("stage", "rule", "text"):
        removed.add_column(column, overflow="fold")
    for r in trace.removed:
        text = " ".join(r.text.split())
        removed.add_row(r.stage, r.rule[:60], text[:width] + ("…" if len(text) > width else ""))
    console.print(removed)
