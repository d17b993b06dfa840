"""`sieve rules suggest`: rules learned from a source's own pages (extractors.learned, flows.rules_cmd).

The demo site is rendered in-process (no network). Two templates are used: the demo as served,
whose chrome the built-in genre rules already know, and a "redesign" of it (class names, headings,
calls-to-action and footer renamed, the hot block moved into the article body without classes)
that the built-in rules do not know; there, only learned rules can clean the pages.
"""
from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from selectolax.lexbor import LexborHTMLParser

from demo import DemoSite
from extractors import Article, Rules, extract
from extractors.learned import Suggestion, learned_rules, merge_rules, rules_from, suggest_rules
from extractors.scoring import char_scores
from flows.config import load_config
from flows.rules_cmd import add_rules_to_yaml, source_learned_rules, suggest_command

ROOT = Path(__file__).resolve().parent.parent
SITE = DemoSite(60)
FETCHED_AT = datetime(2023, 6, 1, 12, 0, tzinfo=UTC)

DEMO_BOILERPLATE = ["热博", "搜索建议", "免责声明", "我唯一的个人微信", "添加请备注", "聚热点", "欠款不还会坐牢吗",
                    "相关阅读", "相关文章", "上一篇", "阅读原文", "点击上方蓝字", "Copyright"]

# ---- the redesigned template ------------------------------------------------------------------

_CLASS_RENAMES = {"header": "top-x", "logo": "brand", "nav": "links", "search-suggest": "kw-box", "hot-item": "kw-item",
                  "hot-title": "kw-t", "hot-teaser": "kw-d", "tag": "kw-l", "related": "more-box", "footer": "bottom-x",
                  "crumb": "loc", "pager": "turn", "right": "col-b", "tags": "lbl"}
_TEXT_RENAMES = {
    "搜索建议:": "大家都在搜:", "热博": "热议榜", "相关阅读": "看了又看", "...(展开)": "…查看全文",
    "免责声明:本站仅提供信息存储空间服务,文章版权归原作者所有,如有侵权请联系删除。": "温馨提示:内容来自网友分享,观点仅代表作者本人",
    "Copyright © 2023 聚热点 juredian.com 版权所有": "2023 热料站 reliao.com 保留权利",
    "聚热点 juredian": "热料站 reliao", "我唯一的个人微信": "加我好友一起聊", "添加请备注来自公众号": "请注明来意",
    "长按识别二维码关注,点个在看再走吧": "喜欢就收藏本页吧", "点击上方蓝字关注我们": "本文首发于小站",
    "阅读原文": "查看来源", "您当前的位置:": "所在:", "上一篇:": "前文:", "下一篇:": "后文:",
    "上一篇文章": "前一文", "下一篇文章": "后一文",
}
REDESIGN_BOILERPLATE = ["大家都在搜", "热议榜", "看了又看", "查看全文", "温馨提示", "保留权利", "热料站", "加我好友一起聊",
                        "请注明来意", "喜欢就收藏本页吧", "本文首发于小站", "查看来源", "所在:", "前文:", "后文:",
                        "欠款不还会坐牢吗", "相关文章"]


def redesign(html: str) -> str:
    """The demo template after a redesign the built-in rules do not know."""
    for old, new in _TEXT_RENAMES.items():
        html = html.replace(old, new)
    html = re.sub(r'class="([^"]+)"',
                  lambda m: 'class="{}"'.format(" ".join(_CLASS_RENAMES.get(c, c) for c in m.group(1).split())), html)
    # the hot block moves from the sidebar to the end of the article body, without classes
    found = re.search(r'<div class="kw-box">(.*?)</div><div class="more-box">', html, re.S)
    assert found, "the demo template changed: update redesign()"
    block = re.sub(r' class="[^"]+"', "", found.group(1))
    html = html.replace(found.group(0), '<div class="more-box">')
    if '<div class="turn">' in html:
        return html.replace('</div></div><div class="turn">', f'<div>{block}</div></div></div><div class="turn">', 1)
    return html.replace('</div></div></div><div class="col-b">', f'<div>{block}</div></div></div></div><div class="col-b">', 1)


def _decoded(number: int) -> str:
    article = SITE.article(number)
    _, body, _ = SITE.render(article.path)
    return body.decode("gb18030" if article.charset == "gbk" else "utf-8")


def demo_pages(transform=lambda html: html) -> list[tuple[str, str]]:
    return [(f"http://127.0.0.1{a.path}", transform(_decoded(a.number))) for a in SITE.articles()]


@pytest.fixture(scope="module")
def pages() -> list[tuple[str, str]]:
    return demo_pages()


@pytest.fixture(scope="module")
def redesigned() -> list[tuple[str, str]]:
    return demo_pages(redesign)


def _run(pages: list[tuple[str, str]], rules: Rules | None) -> tuple[float, list[tuple[str, str]]]:
    """Mean character F1 against the site's truth, and (url, boilerplate) pairs that leaked."""
    scores, leaks = [], []
    for article, (url, html) in zip(SITE.articles(), pages, strict=True):
        result = extract(html, url, rules, fetched_at=FETCHED_AT)
        text = result.text if isinstance(result, Article) else ""
        scores.append(char_scores(text, article.text).f1)
        leaks += [(url, word) for word in DEMO_BOILERPLATE + REDESIGN_BOILERPLATE if word in text]
    return sum(scores) / len(scores), leaks


# ---- restoring clean output ---------------------------------------------------------------------

def test_demo_learned_rules_restore_clean_output(pages):
    configured = load_config(ROOT / "config.yaml").source("demo").rules
    suggestions = suggest_rules(pages, min_share=0.3)
    selectors = [s.value for s in suggestions if s.kind == "drop_selectors"]
    # the template blocks are found by themselves, not only left to the built-in rules
    tree = LexborHTMLParser(pages[1][1])
    for selector in selectors:
        for node in tree.css(selector):
            node.decompose()
    remaining = tree.body.text()
    for chrome in ("聚热点 juredian", "免责声明", "热博", "搜索建议", "相关文章", "Copyright"):
        assert chrome not in remaining, (chrome, selectors)
    assert SITE.article(2).paragraphs[1] in remaining

    learned = rules_from(suggestions)
    f1_configured, _ = _run(pages, configured)
    f1_learned, leaks = _run(pages, merge_rules(Rules(), learned))
    assert leaks == []
    assert f1_learned >= f1_configured - 0.002 and f1_learned >= 0.97


def test_redesigned_template_needs_and_gets_learned_rules(redesigned):
    f1_none, leaks_none = _run(redesigned, Rules())
    assert leaks_none, "the built-in rules alone should not know the redesigned chrome (test has no teeth)"
    suggestions = suggest_rules(redesigned, min_share=0.3)
    kinds = {s.kind for s in suggestions}
    assert kinds == {"drop_selectors", "cut_at", "drop_lines"}
    cut = next(s for s in suggestions if s.kind == "cut_at")
    assert re.search(cut.value, "大家都在搜:") and cut.share == pytest.approx(1.0)
    f1_learned, leaks = _run(redesigned, learned_rules(redesigned, 0.3))
    assert leaks == []
    assert f1_learned >= max(f1_none, 0.97)


def test_suggestion_fields(pages):
    suggestions = suggest_rules(pages, min_share=0.3)
    assert suggestions
    distinct = len(pages) - sum(1 for a in SITE.articles() if a.copy_of)  # copies count once
    for s in suggestions:
        assert isinstance(s, Suggestion) and s.kind in ("drop_selectors", "cut_at", "drop_lines")
        assert 0.3 <= s.share <= 1.0 and s.pages == round(s.share * distinct)
        assert s.example and s.chars_removed >= len(s.example.split(" / ")[0])
        if s.kind != "drop_selectors":
            re.compile(s.value)
            assert s.value.startswith("^") and s.value.endswith("$")
    header = next(s for s in suggestions if s.kind == "drop_selectors" and "聚热点" in s.example)
    assert header.pages == distinct


# ---- never article text -------------------------------------------------------------------------

def _assert_no_article_text(suggestions: list[Suggestion], pages: list[tuple[str, str]], paragraphs: list[str],
                            titles: list[str]) -> None:
    for s in suggestions:
        if s.kind == "drop_selectors":
            continue
        hits = [p for p in paragraphs + titles if re.search(s.value, p, re.IGNORECASE)]
        assert not hits, (s, hits[:3])
    selectors = [s.value for s in suggestions if s.kind == "drop_selectors"]
    long_paragraphs = [p for p in paragraphs if len(p) >= 12]
    for _, html in pages:
        tree = LexborHTMLParser(html)
        for selector in selectors:
            for node in tree.css(selector):
                text = node.text()
                assert not any(p in text for p in long_paragraphs), selector
                assert not any(t in text for t in titles), selector


@pytest.mark.parametrize("min_share", [0.05, 0.3])
def test_no_suggestion_matches_article_text(pages, redesigned, min_share):
    paragraphs = [p for a in SITE.articles() for p in a.paragraphs]
    titles = [a.title for a in SITE.articles()]
    for corpus in (pages, redesigned):
        _assert_no_article_text(suggest_rules(corpus, min_share=min_share), corpus, paragraphs, titles)


def test_republished_copies_count_once(pages):
    """One article republished under 40 URLs (exact and edited copies, with unpunctuated subheadings
    and a paragraph repeated inside it) is one page, so none of its lines is taken for template."""
    subheads = ["一、写在前面", "二、那些年踩过的坑", "三、后来怎么样了"]
    original = _decoded(6)
    paragraphs = list(SITE.article(6).paragraphs)
    body = paragraphs[:]
    body.insert(1, subheads[0])
    body.insert(4, subheads[1])
    body.insert(7, subheads[2])
    body.insert(8, paragraphs[2])       # a paragraph the author repeats
    body.insert(9, paragraphs[2])

    def with_body(lines: list[str]) -> str:
        inner = "".join(f"<p>{line}</p>" for line in lines)
        return re.sub(r'(<div class="content" id="content">).*?(</div></div>)', lambda m: m.group(1) + inner + m.group(2),
                      original, count=1, flags=re.S)

    copies = []
    for i in range(40):
        lines = list(body)
        if i % 3 == 1:
            lines[-1] = lines[-1].rstrip("。") + ",转载时略有删改。"
        elif i % 3 == 2:
            del lines[5]
        copies.append((f"http://127.0.0.1/copy/{i}.html", with_body(lines)))
    corpus = pages + copies
    suggestions = suggest_rules(corpus, min_share=0.3)
    _assert_no_article_text(suggestions, corpus, paragraphs + subheads, [SITE.article(6).title])
    header = next(s for s in suggestions if "聚热点" in s.example)
    assert header.pages == len(pages) - sum(1 for a in SITE.articles() if a.copy_of)  # 40 copies added no page


def test_paragraph_repeated_inside_one_article_is_not_template(pages):
    refrain = "重要的事情说三遍"
    html = pages[0][1].replace('<div class="content" id="content">',
                               '<div class="content" id="content">' + f"<p>{refrain}</p>" * 12, 1)
    corpus = [(pages[0][0], html)] + pages[1:8]
    suggestions = suggest_rules(corpus, min_share=0.3)
    assert not [s for s in suggestions if s.kind != "drop_selectors" and re.search(s.value, refrain)]
    assert suggestions, "the template of 8 pages should still be found"


def test_base_rules_are_not_proposed_again(pages):
    configured = load_config(ROOT / "config.yaml").source("demo").rules
    suggestions = suggest_rules(pages, min_share=0.3, base=configured)
    values = {s.value for s in suggestions}
    assert not values & set(configured.drop_selectors)
    for s in suggestions:
        if s.kind == "drop_selectors":  # nothing inside a configured block
            assert not any(word in s.example for word in ("聚热点 juredian", "免责声明", "热博"))


def test_merge_rules_keeps_base_and_adds_new():
    base = Rules(drop_selectors=(".a",), content_selector="#c", cut_at=("^x$",), strip_prefix=("^p",))
    extra = Rules(drop_selectors=(".a", ".b"), content_selector="#other", drop_lines=("^y$",))
    merged = merge_rules(base, extra)
    assert merged.drop_selectors == (".a", ".b") and merged.content_selector == "#c"
    assert merged.cut_at == ("^x$",) and merged.drop_lines == ("^y$",) and merged.strip_prefix == ("^p",)
    assert merge_rules(Rules(), extra).content_selector == "#other"


def test_too_few_pages_or_garbage_give_nothing():
    assert suggest_rules([]) == []
    assert suggest_rules([("u1", "<html><body><p>x</p></body></html>")] * 2) == []
    assert suggest_rules([("a", ""), ("b", "\x00\xff<<<"), ("c", "<div class='x'>" * 3000)]) == []
    with pytest.raises(ValueError):
        suggest_rules([], min_share=0)
    deep = [(f"u{i}", "<div class='nav'>首页 新闻</div>" + "<div class='x'>" * 3000
             + f"<p>第{i}篇文字,每页不同{'甲乙丙丁'[i % 4] * (i + 1)}。</p>" + "</div>" * 3000) for i in range(6)]
    assert [s.value for s in suggest_rules(deep)] == [".nav"]  # never the wrappers around the text


# ---- the command: warehouse in, config.yaml out ---------------------------------------------------

def _store_pages(db: Path, source: str, pages: list[tuple[str, str]]) -> None:
    from datetime import timedelta

    from warehouse import FetchRow, Warehouse

    rows = [FetchRow(run_id=None, source_id=source, url=url, kind="article", final_url=url, status=200, error=None,
                     detail="", content_type="text/html", nbytes=len(html.encode()), elapsed_ms=1, encoding="utf-8",
                     replaced=False, attempts=1, etag=None, last_modified=None, fetched_at=FETCHED_AT, html=html)
            for url, html in pages]
    Warehouse(db).record_fetches(rows, revisit_after=timedelta(days=1))


def _config_without_demo_rules(tmp_path: Path) -> Path:
    """The project's config.yaml (comments and all), warehouse in tmp_path, demo rules removed."""
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("path: data/sieve.duckdb", f"path: {tmp_path / 'sieve.duckdb'}")
    text = re.sub(r"(  demo:.*?\n)    rules:\n(      .*\n)+", r"\1", text, count=1, flags=re.S)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path).source("demo").rules == Rules()
    return path


def _comments(text: str) -> list[str]:
    return [line[line.index("#"):].strip() for line in text.splitlines() if "#" in line and "'" not in line.split("#")[0]]


def test_write_adds_rules_keeps_comments_and_loads(tmp_path, redesigned):
    config_path = _config_without_demo_rules(tmp_path)
    before = config_path.read_text(encoding="utf-8")
    cfg = load_config(config_path)
    _store_pages(cfg.warehouse.path, "demo", redesigned)
    _store_pages(cfg.warehouse.path, "juredian", demo_pages()[:5])  # another source's pages are not read

    learned_mode = source_learned_rules(cfg, "demo", min_share=0.3)  # what a learned extraction mode would use
    assert ".top-x" in learned_mode.drop_selectors and learned_mode.cut_at

    out = io.StringIO()
    code = suggest_command(cfg, config_path, "demo", min_share=0.3, write=True, yes=True,
                           console=Console(file=out, width=200, color_system=None))
    assert code == 0
    printed = out.getvalue()
    assert "drop_selectors" in printed and "+      drop_lines:" in printed  # the table, then the diff
    after = config_path.read_text(encoding="utf-8")
    assert _comments(after) == _comments(before)
    rules = load_config(config_path).source("demo").rules
    assert set(rules.drop_selectors) >= {".top-x", ".bottom-x"}
    assert any(re.search(p, "大家都在搜:") for p in rules.cut_at)
    assert rules.drop_lines
    assert load_config(config_path).source("juredian") == load_config(ROOT / "config.yaml").source("juredian")
    assert set(rules.drop_selectors) == set(learned_mode.drop_selectors)
    f1, leaks = _run(redesigned, rules)
    assert leaks == [] and f1 >= 0.97

    # a second run finds nothing new to add for what it wrote
    out = io.StringIO()
    assert suggest_command(load_config(config_path), config_path, "demo", min_share=0.3, write=True, yes=True,
                           console=Console(file=out, width=200)) == 0
    assert config_path.read_text(encoding="utf-8") == after


def test_write_declined_or_unknown_source_changes_nothing(tmp_path, pages, monkeypatch):
    from rich.prompt import Confirm

    config_path = _config_without_demo_rules(tmp_path)
    before = config_path.read_text(encoding="utf-8")
    cfg = load_config(config_path)
    _store_pages(cfg.warehouse.path, "demo", pages)
    asked = []
    monkeypatch.setattr(Confirm, "ask", classmethod(lambda cls, *a, **k: asked.append(a) or False))
    console = Console(file=io.StringIO(), width=200)
    assert suggest_command(cfg, config_path, "demo", min_share=0.3, write=True, yes=False, console=console) == 0
    assert asked and config_path.read_text(encoding="utf-8") == before
    assert suggest_command(cfg, config_path, "nope", min_share=0.3, write=True, yes=True, console=console) == 2
    assert suggest_command(cfg, config_path, "demo", min_share=1.5, write=False, yes=True, console=console) == 2
    assert config_path.read_text(encoding="utf-8") == before


def test_no_warehouse_is_a_clean_failure(tmp_path):
    config_path = _config_without_demo_rules(tmp_path)
    console = Console(file=io.StringIO(), width=200)
    assert suggest_command(load_config(config_path), config_path, "demo", min_share=0.3, write=False, yes=False,
                           console=console) == 1


def test_add_rules_to_yaml_creates_missing_blocks_and_skips_present():
    text = "# top\nsources:\n  s:  # the source\n    start_urls: [http://a/]\n    allowed_hosts: [a]\n"
    new = add_rules_to_yaml(text, "s", {"drop_lines": ["^a\\s*b$"], "drop_selectors": [".x"]})
    assert "# top" in new and "# the source" in new
    again = add_rules_to_yaml(new, "s", {"drop_lines": ["^a\\s*b$"]})
    assert again == new
    import yaml

    rules = yaml.safe_load(new)["sources"]["s"]["rules"]
    assert rules == {"drop_selectors": [".x"], "drop_lines": ["^a\\s*b$"]}
    with pytest.raises(KeyError):
        add_rules_to_yaml(text, "missing", {"drop_lines": ["^x$"]})


# ---- the golden corpus ------------------------------------------------------------------------------

GOLDEN = ROOT / "tests" / "golden"


def test_learned_rules_never_lower_golden_f1(pages, redesigned):
    """Rules learned from the demo (both templates) and from the golden pages themselves, merged
    into each golden page's own rules, never lower its F1 nor leak its boilerplate."""
    from flows.evaluate import load_dataset, score_page

    golden = [p for p in load_dataset(GOLDEN) if p.expected_text is not None]
    assert len(golden) >= 25, "the golden corpus is part of the repository"
    learned_sets = {
        "demo": learned_rules(pages, 0.3),
        "redesign": learned_rules(redesigned, 0.3),
        "golden": learned_rules([(p.url or p.page_id, p.html) for p in golden], 0.3),
    }
    assert any(learned != Rules() for learned in learned_sets.values()), "nothing learned: the test has no teeth"
    baseline = {page.page_id: score_page(page, "sieve") for page in golden}
    for name, learned in learned_sets.items():
        drops = []
        for page in golden:
            merged = merge_rules(page.rules or Rules(), learned)
            if merged == (page.rules or Rules()):
                continue
            before = baseline[page.page_id]
            after = score_page(dataclasses.replace(page, rules=merged), "sieve")
            if after.f1 < before.f1 - 1e-9 or len(after.leaked) > len(before.leaked):
                drops.append((page.page_id, before.f1, after.f1, after.leaked))
        assert not drops, (name, learned, drops)
