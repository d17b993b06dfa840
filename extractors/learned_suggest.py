"""The three kinds of suggestion (drop_selectors, cut_at, drop_lines) and what rules already cover."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from selectolax.lexbor import LexborNode

from extractors.dom import outermost
from extractors.learned_pages import (
    BLOCK_PURITY,
    CANDIDATE_PAGES,
    COLON_END,
    CUT_TAIL_SLACK,
    HEADING_MAX_CHARS,
    LINE_MAX_CHARS,
    LearnPage,
    is_sentence,
    line_regex,
    nodes_lines,
    selectors_of,
    walk_elements,
    walk_up,
)
from extractors.model import Rules
from extractors.regex import compile_rule


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One proposed rule. `share` counts near-duplicate pages once; `chars_removed` is the total
    over the pages given; `builtin` says the global genre rules already do this."""

    kind: str  # "drop_selectors" | "cut_at" | "drop_lines" (the Rules field it goes into)
    value: str  # a CSS selector or an anchored regex
    share: float  # share of distinct pages it applies to
    pages: int  # distinct pages it applies to
    example: str  # text it would remove, from one page
    chars_removed: int
    builtin: bool = False


# ---- the three kinds of suggestion -------------------------------------------------------------


def suggest_selectors(
    pages: list[LearnPage], n_groups: int, min_share: float, repeated: set[str]
) -> tuple[list[Suggestion], dict[int, list[LexborNode]]]:
    # candidates from one page per distinct page (at most CANDIDATE_PAGES of them, with a lower
    # bar so sampling misses nothing); every candidate is then checked on every page
    first_of_group: dict[int, LearnPage] = {}
    for page in pages:
        first_of_group.setdefault(page.group, page)
    sample = list(first_of_group.values())[:: max(1, len(first_of_group) // CANDIDATE_PAGES)]
    seen: dict[str, int] = defaultdict(int)
    for page in sample:
        names: set[str] = set()
        for node, _ in walk_elements(page.body):
            if node.mem_id in page.protected or node.tag in ("body", "html"):
                continue
            attrs = node.attributes
            if "class" in attrs or "id" in attrs:
                names.update(selectors_of(node))
        for name in names:
            seen[name] += 1
    candidates = [s for s, count in seen.items() if count / len(sample) >= min_share / 2]
    scored: list[tuple[Suggestion, dict[int, list[LexborNode]]]] = []
    for selector in candidates:
        groups: set[int] = set()
        total = repeated_chars = 0
        example = ""
        matches: dict[int, list[LexborNode]] = {}
        violated = False
        for index, page in enumerate(pages):
            try:
                nodes = outermost(page.tree.css(selector))
            except Exception:
                violated = True
                break
            if not nodes:
                continue
            ids = {node.mem_id for node in nodes}
            if ids & page.protected:
                violated = True  # the container, an ancestor of it, the title or the metadata
                break
            indices: list[int] = []
            for node in nodes:
                found = nodes_lines(page, node)
                if node.mem_id in page.inside_container and any(page.keys[i] not in repeated for i in found):
                    violated = True  # unique text of the article
                    break
                indices.extend(found)
            keys = [page.keys[i] for i in indices]
            if violated or (page.title_key and page.title_key in keys):
                violated = True
                break
            chars = sum(map(len, keys))
            if chars:
                groups.add(page.group)
                total += chars
                repeated_chars += sum(len(k) for k in keys if k in repeated)
                example = example or " / ".join(page.lines[i] for i in indices[:6])[:80]
            matches[index] = nodes
            if violated:
                break
        share = len(groups) / n_groups
        if violated or share < min_share or not total or repeated_chars < BLOCK_PURITY * total:
            continue
        scored.append((Suggestion("drop_selectors", selector, share, len(groups), example, total), matches))
    # outermost first; a selector whose every match lies inside a kept one adds nothing
    scored.sort(key=lambda item: (-item[0].chars_removed, item[0].value))
    kept: list[Suggestion] = []
    kept_nodes: dict[int, set[int]] = defaultdict(set)
    for suggestion, matches in scored:
        inside = all(
            any(ancestor.mem_id in kept_nodes[index] for ancestor in walk_up(node))
            for index, nodes in matches.items()
            for node in nodes
        )
        if inside:
            continue
        kept.append(suggestion)
        for index, nodes in matches.items():
            kept_nodes[index].update(node.mem_id for node in nodes)
    removal: dict[int, list[LexborNode]] = defaultdict(list)
    kept_values = {s.value for s in kept}
    for suggestion, matches in scored:
        if suggestion.value in kept_values:
            for index, nodes in matches.items():
                removal[index].extend(nodes)
    return kept, removal


def suggest_cuts(
    pages: list[LearnPage], n_groups: int, min_share: float, repeated: set[str]
) -> tuple[list[Suggestion], dict[int, int]]:
    """Heading-like recurring lines after which only repeated text follows, on every page."""
    positions: dict[str, dict[int, int]] = defaultdict(dict)  # key -> page index -> first line index
    for index, page in enumerate(pages):
        for position, (line, key) in enumerate(zip(page.lines, page.keys, strict=True)):
            if position == 0 or key in positions and index in positions[key]:
                continue
            if not key or len(key) > HEADING_MAX_CHARS or key == page.title_key or is_sentence(line):
                continue
            if key in page.heading_keys or COLON_END.search(line):
                positions[key][index] = position
    found: list[tuple[Suggestion, dict[int, int]]] = []
    for where in positions.values():
        groups = {pages[i].group for i in where}
        if len(groups) / n_groups < min_share:
            continue
        ok, removed = True, 0
        for index, position in where.items():
            page = pages[index]
            unique_total = sum(len(k) for k in page.keys if k not in repeated)
            tail_unique = sum(len(k) for k in page.keys[position:] if k not in repeated)
            if tail_unique > CUT_TAIL_SLACK * unique_total:
                ok = False
                break
            removed += sum(len(k) for k in page.keys[position:])
        if ok:
            first = next(iter(where))
            example_line = pages[first].lines[where[first]]
            found.append(
                (
                    Suggestion(
                        "cut_at", line_regex(example_line), len(groups) / n_groups, len(groups), example_line, removed
                    ),
                    where,
                )
            )
    # a marker that always follows another kept marker adds nothing
    found.sort(key=lambda item: (-item[0].chars_removed, item[0].value))
    kept: list[Suggestion] = []
    cut_from: dict[int, int] = {}
    for suggestion, where in found:
        if all(index in cut_from and cut_from[index] < position for index, position in where.items()):
            continue
        kept.append(suggestion)
        for index, position in where.items():
            cut_from[index] = min(position, cut_from.get(index, position))
    return kept, cut_from


def suggest_lines(
    pages: list[LearnPage], n_groups: int, min_share: float, cut_from: dict[int, int]
) -> list[Suggestion]:
    groups: dict[str, set[int]] = defaultdict(set)
    chars: dict[str, int] = defaultdict(int)
    examples: dict[str, str] = {}
    banned: set[str] = set()
    for index, page in enumerate(pages):
        end = cut_from.get(index, len(page.lines))
        for line, key in zip(page.lines[:end], page.keys[:end], strict=True):
            if not key or len(line) > LINE_MAX_CHARS:
                continue
            if key == page.title_key or key in page.zone_keys or (key in page.container_keys and is_sentence(line)):
                banned.add(key)
            groups[key].add(page.group)
            chars[key] += len(line)
            examples.setdefault(key, line)
    out = []
    for key, seen in groups.items():
        share = len(seen) / n_groups
        if key in banned or share < min_share:
            continue
        out.append(Suggestion("drop_lines", line_regex(examples[key]), share, len(seen), examples[key], chars[key]))
    out.sort(key=lambda s: (-s.share, -s.chars_removed, s.value))
    return out


# ---- rule coverage ----------------------------------------------------------------------------


def rule_patterns(rules: Rules) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    compile_all = lambda patterns: [compile_rule(p) for p in patterns]  # noqa: E731  (RE2, as extraction runs them)
    return compile_all(rules.drop_lines), compile_all(rules.cut_at)


def builtin_patterns() -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """The global genre rules' line patterns, when the extractor provides them."""
    try:
        from extractors.genre import compiled
    except Exception:  # the genre rules are optional for learning
        return [], []
    rules = compiled(None)
    return list(rules.drop_lines), list(rules.cut_at)


def covered(suggestion: Suggestion, drop_lines: list[re.Pattern[str]], cut_at: list[re.Pattern[str]]) -> bool:
    if suggestion.kind == "drop_lines":
        return any(p.search(suggestion.example) for p in drop_lines + cut_at)
    if suggestion.kind == "cut_at":
        return any(p.search(suggestion.example) for p in cut_at)
    return False
