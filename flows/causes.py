"""Why a page scored low in `sieve eval`: the cause categories that can be told from the output.

    decode        the decoder had to repair mojibake or replace bytes (the text may be wrong before extraction)
    rejected      no article came out (list_page, too_short, ...)
    wrong block   most of the output is not the article and most of the article is missing
    tail overrun  the article, then lines that are not (rankings, related lists, legal lines) after its end
    head chrome   lines that are not article before it (breadcrumbs, info lines, share bars)
    extra inside  lines that are not article between its paragraphs
    lost text     what came out is article, but part of the article did not

A line "is article" when most of its tokens are in the gold's bag of tokens.
"""

from __future__ import annotations

from extractors.scoring import Scores, tokens

__all__ = ["cause", "LOW_F1", "CAUSES"]

LOW_F1 = 0.9
CAUSES = ("decode", "rejected", "wrong block", "tail overrun", "head chrome", "extra inside", "lost text")
_MOSTLY = 0.6


def cause(
    text: str | None, gold: str, scores: Scores, rejection: str | None, decoding: str = "", metric: str = "tokens"
) -> str:
    """One cause category (with a detail in parentheses where there is one)."""
    if decoding:
        return f"decode ({decoding})"
    if text is None:
        return f"rejected ({rejection or 'no text'})"
    if scores.precision < 0.5 and scores.recall < 0.5:
        return "wrong block"
    if scores.precision >= scores.recall:
        return "lost text"
    gold_bag = tokens(gold)
    lines = [line for line in text.split("\n") if line.strip()]
    in_gold = []
    for line in lines:
        bag = tokens(line)
        total = sum(bag.values())
        in_gold.append(bool(total) and sum((bag & gold_bag).values()) >= 0.5 * total)
    if not any(in_gold):
        return "wrong block"
    first = in_gold.index(True)
    last = len(in_gold) - 1 - in_gold[::-1].index(True)
    extra = [(i, len(line)) for i, (line, ok) in enumerate(zip(lines, in_gold, strict=True)) if not ok]
    total = sum(n for _, n in extra) or 1
    after = sum(n for i, n in extra if i > last)
    before = sum(n for i, n in extra if i < first)
    if after >= _MOSTLY * total:
        return "tail overrun"
    if before >= _MOSTLY * total:
        return "head chrome"
    return "extra inside"
