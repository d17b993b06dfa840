"""The density block's last lines that trafilatura skipped (it drops a last short paragraph that ends in
a logo link; it stops after the first chunk of a body cut by ad rows): which come back (choose.last_lines_of_block,
choose.lost_prose_of_block), on real parsed pages."""
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


def _after_a_stop(tail: str) -> list[str]:
    """trafilatura's text is the first two paragraphs of a block of prose; what comes back of the `tail` HTML."""
    from extractors.choose import lost_prose_of_block

    head = [f"Paragraph {i}: the committee said the metro would run later over the holiday, with the last trains "
            "leaving after midnight." for i in range(2)]
    body = "".join(f"<p>{line}</p>" for line in head)
    tree = LexborHTMLParser(f"<html><body><div id='art'>{body}{tail}</div></body></html>")
    page = page_lines(tree.body, tree.css_first("#art"))
    return [page.lines[i] for i in lost_prose_of_block(locate(head, page), page, page.span)]


PROSE = [f"Later {i}: rail operators plan to add trains for students and workers going home, about eighty a day."
         for i in range(8)]


def _p(lines: list[str]) -> str:
    return "".join(f"<p>{line}</p>" for line in lines)


def test_the_prose_after_trafilatura_stopped_early_comes_back_without_its_ad_labels() -> None:
    assert _after_a_stop(_p(PROSE[:2]) + "<p>Advertisement</p>" + _p(PROSE[2:])) == PROSE


def test_nothing_comes_back_from_a_block_of_links_and_nothing_after_a_link_line() -> None:
    menu = "".join(f"<p><a href='/n/{i}'>Another headline about the city number {i} today</a></p>" for i in range(12))
    assert _after_a_stop(_p(PROSE[:3]) + menu) == []                         # the block is a link list
    more = "<p><a href='/more'>More stories from the city desk</a></p>"
    assert _after_a_stop(_p(PROSE[:3]) + more + _p(PROSE[3:])) == PROSE[:3]  # a link line ends the article
