"""The quality gate: sieve's mean F1 on tests/golden never drops below the recorded floor, and no
boilerplate leaks. The floor lives in tests/golden/floor.json and is only ever raised, on purpose."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from flows.evaluate import load_dataset, run_benchmark, run_eval

GOLDEN = Path(__file__).parent / "golden"
FLOOR = json.loads((GOLDEN / "floor.json").read_text(encoding="utf-8"))


def test_golden_mean_f1_at_or_above_floor_and_nothing_leaks():
    report = run_eval([GOLDEN], [], per_page=False)
    summary = report.summary("golden")
    assert summary is not None and summary.pages >= 30
    assert summary.f1 >= FLOOR["sieve_mean_char_f1"], f"F1 {summary.f1:.4f} < floor {FLOOR['sieve_mean_char_f1']}"
    assert summary.leaked == 0
    assert summary.titles_ok == summary.titles_checked
    assert summary.dates_ok == summary.dates_checked
    assert summary.rejections_ok == summary.rejections_checked >= 3


def test_floor_is_meaningful():
    assert FLOOR["sieve_mean_char_f1"] >= 0.97


def test_public_layout_side_by_side_with_trafilatura(tmp_path):
    """html/<id>.html + gold/<id>.txt is read, scored by tokens, and other extractors run beside."""
    (tmp_path / "html").mkdir()
    (tmp_path / "gold").mkdir()
    body = "".join(f"<p>第{i}段:城市里的年轻人越来越多地选择骑车通勤,既省钱又锻炼身体,还能避开早高峰的拥堵。</p>" for i in range(8))
    html = f"<html><head><title>骑车通勤</title></head><body><div class='nav'><a href='/'>首页</a></div><article>{body}</article></body></html>"
    (tmp_path / "html" / "p1.html").write_text(html, encoding="utf-8")
    gold = "\n".join(f"第{i}段:城市里的年轻人越来越多地选择骑车通勤,既省钱又锻炼身体,还能避开早高峰的拥堵。" for i in range(8))
    (tmp_path / "gold" / "p1.txt").write_text(gold, encoding="utf-8")
    console = Console(record=True, width=200)
    report = run_eval([tmp_path], ["trafilatura", "readability"], console=console)
    names = {s.extractor for s in report.summaries()}
    assert names == {"sieve", "trafilatura", "readability"}
    assert report.summary(tmp_path.name, "sieve").f1 > 0.95
    printed = console.export_text()
    assert "readability" in printed and "p1" in printed


def test_pages_are_decoded_by_the_crawlers_decoder(tmp_path, monkeypatch):
    """Golden and public pages go through crawler/decode.py: breaking it breaks eval."""
    (tmp_path / "html").mkdir()
    (tmp_path / "gold").mkdir()
    (tmp_path / "html" / "g.html").write_bytes('<meta charset="gb2312"><p>朱镕基 陶喆</p>'.encode("gb18030"))
    (tmp_path / "gold" / "g.txt").write_text("朱镕基 陶喆", encoding="utf-8")
    assert "朱镕基 陶喆" in load_dataset(tmp_path)[0].html
    import crawler.decode

    monkeypatch.setattr(crawler.decode, "_decode", lambda body, ctype: (body.decode("utf-8", "replace"), "utf-8", True, "test"))
    assert "朱镕基 陶喆" not in load_dataset(tmp_path)[0].html


def test_benchmark_reports_both_rates():
    results = run_benchmark([GOLDEN], rounds=1)
    assert results[0].pages >= 30
    assert results[0].sieve_pages_per_second > 0 and results[0].trafilatura_pages_per_second > 0
