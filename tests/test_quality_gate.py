"""The quality gate on real pages nobody here wrote (issue 16): sieve's mean bag-of-tokens F1 on
each public set in ../shared/evaldata must not fall under the floor recorded in
tests/quality_floor.json. The golden corpus (tests/golden) is a regression corpus for our own
patterns; this is the evidence. The sets sit beside every checkout and CI run; without them the
test skips, loudly."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flows.evaluate import run_eval

ROOT = Path(__file__).resolve().parent.parent
EVALDATA = ROOT.parent / "shared" / "evaldata"
FLOOR = json.loads((Path(__file__).parent / "quality_floor.json").read_text(encoding="utf-8"))
WORKERS = min(2, os.cpu_count() or 1)


@pytest.fixture(scope="module")
def report():
    missing = [name for name in FLOOR["sets"] if not (EVALDATA / name / "html").is_dir()]
    if missing:
        pytest.skip(f"QUALITY GATE NOT RUN: {EVALDATA} lacks {', '.join(missing)} (it sits beside every checkout)")
    return run_eval([EVALDATA / name for name in FLOOR["sets"]], [], per_page=False, workers=WORKERS)


@pytest.mark.parametrize("name", sorted(FLOOR["sets"]))
def test_public_set_at_or_above_its_floor(report, name: str) -> None:
    summary = report.summary(name)
    assert summary is not None and summary.pages == FLOOR["sets"][name]["pages"]
    floor = FLOOR["sets"][name]["f1"]
    assert summary.f1 >= floor - 1e-9, f"{name}: mean F1 {summary.f1:.4f} < floor {floor}"


def test_no_page_is_lost_to_a_bug(report) -> None:
    crashed = [(r.dataset, r.page_id) for r in report.results if (r.got_rejection or "").startswith(("crash", "internal"))]
    assert not crashed


def test_floor_file_says_why() -> None:
    assert len(FLOOR["reason"].split()) >= 5
