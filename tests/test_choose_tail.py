"""The density block's last lines that trafilatura skipped (it drops a last short paragraph that ends in
a logo link): which ones come back (choose.last_lines_of_block), on a real parsed page."""
from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from extractors.choose import last_lines_of_block
from extractors.lines import locate, page_lines

FIRST = "国家统计局今天宣布,十一月全国的工业产出环比下降,这主要与汽车及部件业的产出大幅下降有关,跌幅超出市场预期。"
LOGO = '<span class="siteLogo"><a href="http://www.example.cn/"><img src="/logo.gif" alt="标题"></a></span>'


def _skipped(last: str) -> list[str]:
    page_html = (f"<html><body><div id='nav'><a href='/'>首页</a></div><div id='art'><p>{FIRST}</p>"
                 f"<p>{last}{LOGO}</p></div></body></html>")
    tree = LexborHTMLParser(page_html)
    page = page_lines(tree.body, tree.css_first("#art"))
    located = locate([FIRST], page)                     # trafilatura's text: the first paragraph only
    return [page.lines[i] for i in last_lines_of_block(located, page, page.span)]


def test_a_last_chinese_sentence_full_of_figures_comes_back() -> None:
    line = "11月的产能利用率降至77.8%,略低于10月的78.0%。"      # fewer ideographs than characters
    assert _skipped(line) == [line]


def test_a_last_line_in_another_script_or_without_a_sentence_end_stays_out() -> None:
    assert _skipped("Capacity use fell to 77.8% in November, from 78.0% in October.") == []
    assert _skipped("11月的产能利用率降至77.8%,略低于10月的78.0%") == []
