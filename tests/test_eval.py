"""`sieve eval`: the golden regression gate (every page at or above its recorded F1, nothing leaks),
the public layout side by side, the oracle, the causes. tests/golden/floor.json holds the measured
F1 of every golden page and a reason line; a drop fails until that file changes, with a new reason."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from flows.evaluate import load_dataset, run_eval

GOLDEN = Path(__file__).parent / "golden"
FLOOR = json.loads((GOLDEN / "floor.json").read_text(encoding="utf-8"))


def test_golden_pages_at_or_above_their_floor_and_nothing_leaks():
    report = run_eval([GOLDEN], [], per_page=False)
    summary = report.summary("golden")
    assert summary is not None and summary.pages >= 30
    scored = {r.page_id: r.f1 for r in report.results if r.f1 is not None}
    assert set(scored) == set(FLOOR["pages"]), "every golden article has a floor (add new pages to floor.json)"
    dropped = {page: (f1, FLOOR["pages"][page]) for page, f1 in scored.items() if f1 < FLOOR["pages"][page] - 1e-9}
    assert not dropped, f"F1 below the recorded floor (now, floor): {dropped}"
    assert summary.leaked == 0
    assert summary.titles_ok == summary.titles_checked
    assert summary.dates_ok == summary.dates_checked
    assert summary.rejections_ok == summary.rejections_checked >= 3


def test_floor_file_says_why():
    assert len(FLOOR["reason"].split()) >= 5
    assert all(0.0 <= value <= 1.0 for value in FLOOR["pages"].values())


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


def test_oracle_is_the_mean_of_the_best_extractor_per_page():
    from flows.evaluate import EvalReport, PageResult

    report = EvalReport([
        PageResult("set", "a", "sieve", 1.0, 0.5, 0.6), PageResult("set", "a", "trafilatura", 1.0, 1.0, 0.9),
        PageResult("set", "b", "sieve", 1.0, 1.0, 0.8), PageResult("set", "b", "trafilatura", 1.0, 1.0, 0.4),
    ])
    assert report.oracle("set") == (0.9 + 0.8) / 2
    assert EvalReport([PageResult("set", "a", "sieve", 1.0, 1.0, 0.7)]).oracle("set") is None  # nothing to pick from
    assert [r.page_id for r in report.worst("set", 1)] == ["a"]


def test_causes_are_told_from_the_output():
    from extractors.scoring import token_scores
    from flows.causes import cause

    article = "城东的老菜市场完成了改造,摊位更宽敞了。\n顾客可以在出口处免费复秤,投诉少了一大半。"
    tail = "48小时点击排行\n奥巴马演讲露中国制造\n湖北宜昌钉子户被挖成孤楼\n备案号京ICP证030173号"
    head = "您当前的位置:首页 > 新闻 > 社会\n发布时间:2023年05月12日 来源:城市日报 作者:周明 浏览:1024次"

    def why(text, rejection=None, decoding=""):
        return cause(text, article, token_scores(text or "", article), rejection, decoding)

    assert why(article + "\n" + tail) == "tail overrun"
    assert why(head + "\n" + article) == "head chrome"
    assert why(article.split("\n")[0]) == "lost text"
    assert why(tail) == "wrong block"
    assert why(None, "list_page") == "rejected (list_page)"
    assert why(article[:5], decoding="utf-8>cp1252>gb18030: mojibake repaired").startswith("decode")


def test_report_prints_oracle_and_worst_pages_with_causes(tmp_path):
    (tmp_path / "html").mkdir()
    (tmp_path / "gold").mkdir()
    paras = "".join(f"<p>第{i}段:城市里的年轻人越来越多地选择骑车通勤,既省钱又锻炼身体。</p>" for i in range(6))
    ranking = "<div><h3>48小时点击排行</h3>" + "".join(f"<p><a href='/{i}'>排行第{i}条新闻标题示例文字很长</a></p>" for i in range(12)) + "</div>"
    (tmp_path / "html" / "p1.html").write_text(f"<html><body><div>{paras}</div>{ranking}</body></html>", encoding="utf-8")
    (tmp_path / "gold" / "p1.txt").write_text("完全不同的内容。" * 30, encoding="utf-8")   # nothing matches: a low score
    console = Console(record=True, width=220)
    report = run_eval([tmp_path], ["trafilatura"], console=console, per_page=False)
    printed = console.export_text()
    assert "best of sieve+trafilatura" in printed
    assert "worst pages for sieve" in printed and "wrong block" in printed
    assert report.oracle(tmp_path.name) is not None
