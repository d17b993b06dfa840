"""Golden corpus: every page's text, title, date, and no boilerplate leaking (tests/golden/)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors import Article, Rejection, extract
from extractors.scoring import char_scores, leaked_lines
from flows.evaluate import load_dataset

GOLDEN = Path(__file__).parent / "golden"
PAGES = load_dataset(GOLDEN)
FLOOR = json.loads((GOLDEN / "floor.json").read_text(encoding="utf-8"))["pages"]


def test_corpus_is_big_enough():
    articles = [p for p in PAGES if p.expected_text is not None]
    assert len(PAGES) >= 30
    assert len(PAGES) - len(articles) >= 3, "list pages (non-articles) are part of the corpus"


@pytest.mark.parametrize("page", PAGES, ids=[p.page_id for p in PAGES])
def test_golden_page(page):
    result = extract(page.html, page.url, page.rules, fetched_at=page.fetched_at)
    if page.expected_text is None:
        assert isinstance(result, Rejection), f"a non-article came out as an article: {result.text[:80]!r}"
        assert result.reason == "list_page"
        return
    assert isinstance(result, Article), f"rejected: {result.reason} {result.detail}"
    assert not leaked_lines(result.text, page.boilerplate)
    assert result.title == page.title
    want = page.published_at
    assert (result.published_at.isoformat() if result.published_at else None) == want
    assert char_scores(result.text, page.expected_text).f1 >= FLOOR[page.page_id] - 1e-9


def _seed():
    return next(p for p in PAGES if p.page_id == "juredian_seed")


def test_seed_page_runs_from_column_line_to_sign_off():
    page = _seed()
    article = extract(page.html, page.url)
    assert isinstance(article, Article)
    lines = article.text.split("\n")
    assert lines[0] == "群响联创 toby 的创业呼吸日记"   # NBSP normalised to a space
    assert lines[-1] == "以上,欢迎交流。"
    assert "\u00a0" not in article.text
    assert article.title == "从北京大厂,去四线城市工厂当操盘手"
    assert article.published_at is None


def test_seed_page_keeps_repeated_paragraph_and_short_lines():
    article = extract(_seed().html, "https://www.juredian.com/news/a7e127e5a74ce577.html")
    repeated = "能力模型上,大厂更讲究的是资源整合项目管理,小公司更讲求别管什么拳什么腿先干出来再说。"
    assert article.text.count(repeated) == 2
    assert "P用没有。" in article.text.split("\n")
    assert "鱼????来的" not in article.text  # that emoji line belongs to the 热博 block


def test_real_lines_with_genre_words_survive():
    page = next(p for p in PAGES if p.page_id == "tricky_lines")
    article = extract(page.html, page.url)
    for line in ("我在搜索引擎上查了一下", "下次再展开聊", "欢迎在微信群里交流"):
        assert line in article.text


def test_gbk_page_is_stored_as_gbk_bytes():
    raw = (GOLDEN / "gbk_meta_only.html").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    page = next(p for p in PAGES if p.page_id == "gbk_meta_only")
    assert "朱镕基 陶喆" in extract(page.html, page.url).text
