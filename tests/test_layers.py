"""Layers import downward only: flows -> pipeline -> crawler, extractors, warehouse -> outcomes; demo imports
no sieve code.

Read from the source with `ast`, so a lazy import inside a function counts as much as one at the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIEVE_PACKAGES = {"flows", "pipeline", "crawler", "extractors", "warehouse", "outcomes", "demo"}
ALLOWED = {
    "flows": {"flows", "pipeline", "crawler", "extractors", "warehouse", "outcomes", "demo"},
    "pipeline": {"pipeline", "crawler", "extractors", "warehouse", "outcomes"},
    "crawler": {"crawler", "outcomes"},
    "extractors": {"extractors", "outcomes"},
    "warehouse": {"warehouse", "outcomes"},
    "outcomes": {"outcomes"},
    "demo": {"demo"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & SIEVE_PACKAGES


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_its_layers(package: str) -> None:
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = imported_packages(path) - ALLOWED[package]
        if wrong:
            offenders[str(path.relative_to(ROOT))] = sorted(wrong)
    assert not offenders, f"imports against the layering: {offenders}"


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from flows.config import load_config\n    import warehouse.store\n"
                   "import pipeline.run\n", encoding="utf-8")
    assert imported_packages(bad) == {"flows", "warehouse", "pipeline"}
