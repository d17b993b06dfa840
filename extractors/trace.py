"""What extraction decided for one page, recorded only when a caller asks (`sieve extract --explain`).

`extract(..., trace=Trace())` fills it; with `trace=None` (the default, every crawl) each stage's
`if trace is not None` costs nothing. The trace holds plain data (strings and numbers), never
nodes, so it can be printed or serialised after the tree is gone; recording it changes no
decision, so output with and without a trace is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Trace", "CandidateNote", "Removal"]


@dataclass(frozen=True, slots=True)
class CandidateNote:
    """One block considered as the article."""

    name: str  # "density", "trafilatura", "selector", "density (after fallback)" ...
    where: str  # a short description of the node: tag#id.class
    chars: int
    score: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Removal:
    """A line or block that did not make it into the text, and who removed it."""

    stage: str  # "prune", "bound", "rules", "tail", ...
    rule: str  # the selector, regex or rule name
    text: str  # the removed text (first characters)


@dataclass(slots=True)
class Trace:
    decoding: str = ""  # filled by the caller that decoded the bytes
    steps: list[tuple[str, str]] = field(default_factory=list)  # (stage, what happened)
    candidates: list[CandidateNote] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)
    chosen: str = ""
    reason: str = ""

    def step(self, stage: str, message: str) -> None:
        self.steps.append((stage, message))

    def candidate(self, name: str, where: str, chars: int, score: float | None = None, detail: str = "") -> None:
        self.candidates.append(CandidateNote(name, where, chars, score, detail))

    def remove(self, stage: str, rule: str, text: str) -> None:
        self.removed.append(Removal(stage, rule, text[:200]))

    def choose(self, chosen: str, reason: str) -> None:
        self.chosen, self.reason = chosen, reason
        self.steps.append(("choose", f"{chosen}: {reason}"))
