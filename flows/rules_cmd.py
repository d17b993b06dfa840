"""`sieve rules suggest SOURCE`: learn a source's boilerplate from its stored pages, show it, and
optionally write it into config.yaml.

The learning itself is pure (`extractors.learned`); this module is the I/O around it: read the
source's pages from the warehouse, print a table, and with `--write` add the rules to
`sources.<source>.rules` with ruamel.yaml's round-trip mode, so the file's comments, order and
quoting survive. The diff is shown first and confirmed unless `--yes`; the new file is validated
with `load_config` before it replaces the old one (atomically), so a write never leaves a
config that sieve refuses.

The CLI wrapper in flows/cli.py only parses options and calls `suggest_command`.
"""

from __future__ import annotations

import difflib
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from extractors.learned import SUGGESTION_KINDS, Suggestion, learned_rules, merge_rules, suggest_rules
from extractors.model import Rules

if TYPE_CHECKING:
    from rich.console import Console

    from flows.config import Config

__all__ = [
    "suggest_command",
    "load_source_pages",
    "source_learned_rules",
    "add_rules_to_yaml",
    "suggestions_table",
    "PAGES_SQL",
]

PAGES_SQL = "SELECT url, html FROM pages WHERE source_id = ? AND html IS NOT NULL ORDER BY fetched_at DESC LIMIT ?"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def load_source_pages(warehouse_path: Path, source: str, limit: int) -> list[tuple[str, str]]:
    """(url, html) of the source's most recently fetched stored pages."""
    from warehouse import Warehouse

    result = Warehouse(warehouse_path).query(PAGES_SQL, [source, limit])
    return [(str(url), str(html)) for url, html in result.rows]


def source_learned_rules(cfg: Config, source: str, *, min_share: float = 0.3, max_pages: int = 400) -> Rules:
    """The source's configured rules plus what its stored pages teach (the "learned" mode).

    Off by default: a caller (reextract, eval) opts in and passes the result to `extract`.
    With no stored pages this is just the configured rules.
    """
    from warehouse import WarehouseMissing

    configured = cfg.source(source).rules
    try:
        pages = load_source_pages(cfg.warehouse.path, source, max_pages)
    except WarehouseMissing:
        pages = []
    return merge_rules(configured, learned_rules(pages, min_share, base=configured))


def suggestions_table(suggestions: Sequence[Suggestion], n_pages: int, title: str):
    """A rich table: kind, value, share, example, chars removed (total and per page)."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("kind")
    table.add_column("value", overflow="fold")
    table.add_column("share (distinct pages)", justify="right")
    table.add_column("example", overflow="ellipsis", max_width=48, no_wrap=True)
    table.add_column("chars removed", justify="right")
    notes = any(s.builtin for s in suggestions)
    if notes:
        table.add_column("note", style="dim")
    for number, s in enumerate(suggestions, start=1):
        per_page = s.chars_removed / n_pages if n_pages else 0
        row = [
            str(number),
            s.kind,
            s.value,
            f"{s.share:.0%} ({s.pages})",
            s.example,
            f"{s.chars_removed:,} ({per_page:.0f}/page)",
        ]
        if notes:
            row.append("built-in rules do this already" if s.builtin else "")
        table.add_row(*row)
    return table


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments, key order and quoting kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines (regexes, flow lists)
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def add_rules_to_yaml(text: str, source: str, additions: dict[str, list[str]]) -> str:
    """config.yaml text with `additions` (Rules field -> values) appended under
    sources.<source>.rules; values already there are not repeated. Comments survive."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    yaml = _yaml()
    data = yaml.load(text)
    try:
        source_map = data["sources"][source]
    except (KeyError, TypeError):
        raise KeyError(f"no source {source!r} under sources: in the config") from None
    rules = source_map.get("rules")
    if rules is None:
        rules = CommentedMap()
        source_map["rules"] = rules
    flow = _siblings_flow_style(rules)
    for kind in SUGGESTION_KINDS:
        values = [v for v in additions.get(kind, []) if v]
        if not values:
            continue
        current = rules.get(kind)
        if current is None:
            current = CommentedSeq()
            if flow:
                current.fa.set_flow_style()
            rules[kind] = current
        present = {str(v) for v in current}
        for value in values:
            if value not in present:
                current.append(_quoted(kind, value, DoubleQuotedScalarString, SingleQuotedScalarString))
                present.add(value)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _quoted(kind: str, value: str, double, single):
    """Selectors in double quotes like the file's own; regexes in single quotes (no escapes)."""
    if kind == "drop_selectors" and "\\" not in value and '"' not in value:
        return double(value)
    return single(value)


def _siblings_flow_style(rules) -> bool:
    """New lists follow the style of the lists already in the block (flow `[a, b]` by default)."""
    for value in rules.values():
        if hasattr(value, "fa"):
            return value.fa.flow_style()
    return True


def _unified_diff(old: str, new: str, path: Path) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=str(path), tofile=f"{path} (new)"
        )
    )


def _replace_validated(path: Path, new_text: str) -> None:
    """Write next to the file, validate with load_config, then replace atomically."""
    from flows.config import load_config

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(new_text)
        load_config(tmp)  # raises ConfigError: the old file stays untouched
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def suggest_command(
    cfg: Config,
    config_path: Path,
    source: str,
    *,
    min_share: float = 0.3,
    write: bool = False,
    yes: bool = False,
    console: Console,
    max_pages: int = 400,
    include_builtin: bool = False,
) -> int:
    """Suggest rules for one source from its stored pages; with `write`, add them to the config.

    Returns the exit code: 0 done (also when nothing recurs or the write was declined),
    1 the warehouse could not be read or the new config was refused, 2 bad usage.
    """
    from rich.prompt import Confirm
    from rich.syntax import Syntax

    from flows.config import ConfigError
    from warehouse import WarehouseError, WarehouseMissing

    try:
        source_cfg = cfg.source(source)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        return EXIT_USAGE
    if not 0 < min_share <= 1:
        console.print("[red]--min-share must be in (0, 1][/red]")
        return EXIT_USAGE
    try:
        pages = load_source_pages(cfg.warehouse.path, source, max_pages)
    except WarehouseMissing as exc:  # its message says what to run first
        console.print(str(exc), highlight=False)
        return EXIT_FAILED
    except WarehouseError as exc:
        console.print(f"[red]cannot read the warehouse:[/red] {exc}", highlight=False)
        return EXIT_FAILED
    if not pages:
        console.print(f"no stored pages for source {source!r}: crawl it first")
        return EXIT_OK
    suggestions = suggest_rules(pages, min_share=min_share, base=source_cfg.rules, max_pages=max_pages)
    if not suggestions:
        console.print(
            f"nothing recurs on {min_share:.0%} of {len(pages)} pages of {source!r} beyond its configured rules"
        )
        return EXIT_OK
    console.print(suggestions_table(suggestions, len(pages), f"rules suggested for {source} ({len(pages)} pages)"))
    accepted = [s for s in suggestions if include_builtin or not s.builtin]
    if not write:
        console.print(
            f"{len(accepted)} rule(s) to add; run again with --write to add them to {config_path}", style="dim"
        )
        return EXIT_OK
    if not accepted:
        console.print("the built-in rules already do all of this: nothing to write", style="dim")
        return EXIT_OK
    additions: dict[str, list[str]] = {}
    for suggestion in accepted:
        additions.setdefault(suggestion.kind, []).append(suggestion.value)
    old_text = config_path.read_text(encoding="utf-8")
    try:
        new_text = add_rules_to_yaml(old_text, source, additions)
    except KeyError as exc:
        console.print(f"[red]{config_path}: {exc.args[0]}[/red]", highlight=False)
        return EXIT_USAGE
    diff = _unified_diff(old_text, new_text, config_path)
    if not diff:
        console.print("config already holds these rules: nothing to write", style="dim")
        return EXIT_OK
    console.print(Syntax(diff, "diff", theme="ansi_dark", word_wrap=True))
    if not yes and not Confirm.ask(f"Write these rules to {config_path}?", console=console, default=False):
        console.print("nothing written")
        return EXIT_OK
    try:
        _replace_validated(config_path, new_text)
    except ConfigError as exc:
        console.print(f"[red]the new config would be refused; nothing written:[/red]\n{exc}", highlight=False)
        return EXIT_FAILED
    console.print(f"wrote {len(accepted)} rule(s) to {config_path}")
    return EXIT_OK
