"""Hypothesis: extract() never raises and never hides a bug as a rejection, whatever it is given; a
page that holds an article still yields it, however broken the markup around it."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from extractors import Article, Rejection, extract
from outcomes import INTERNAL_ERROR, REJECTION_REASONS

TAGS = ["p", "div", "section", "span", "a", "h1", "table", "td", "li", "script", "br", "article", "form"]
fragment = st.recursive(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    lambda children: st.tuples(st.sampled_from(TAGS), st.lists(children, max_size=4), st.booleans()).map(
        lambda t: f"<{t[0]} class='x share'>" + "".join(t[1]) + (f"</{t[0]}>" if t[2] else "")
    ),
    max_leaves=25,
)
# the same broken markup with a neutral class: the "page with an article" property is about
# markup, not about chrome class words (an article inside class="share" is pruned on purpose)
neutral = st.recursive(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<&"), max_size=40),
    lambda children: st.tuples(st.sampled_from([t for t in TAGS if t != "script"]),   # an open <script> hides all
                               st.lists(children, max_size=4), st.booleans()).map(
        lambda t: f"<{t[0]} class='x'>" + "".join(t[1]) + (f"</{t[0]}>" if t[2] else "")
    ),
    max_leaves=25,
)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ARTICLE = [
    "今年夏天,城东的老菜市场完成了改造,摊位从原来的一百二十个减少到九十个,但每个摊位都更宽敞了。",
    "改造后的市场装上了新风系统和统一的电子秤,顾客可以在出口处免费复秤,缺斤少两的投诉少了一大半。",
    "卖豆腐的刘大姐在这里干了十五年,她说最大的变化是地面不再湿滑,下雨天也不用穿雨靴了。",
    "市场管理方表示,下一步还将引入线上下单、线下自提的服务,方便上班族晚上取菜。",
]


def _no_bug(result: Article | Rejection) -> None:
    assert isinstance(result, (Article, Rejection))
    if isinstance(result, Rejection):
        assert result.reason != INTERNAL_ERROR, result.detail
        assert result.reason in REJECTION_REASONS


@SETTINGS
@given(st.text(max_size=2000))
def test_arbitrary_text(text):
    _no_bug(extract(text, "u"))


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_decoded_any_way(raw):
    _no_bug(extract(raw.decode("latin-1"), "u"))
    _no_bug(extract(raw.decode("utf-8", "replace"), "u"))


@SETTINGS
@given(fragment, st.integers(min_value=0, max_value=3000))
def test_broken_and_nested_html(body, depth):
    html = "<html><body>" + "<div>" * depth + body + "<p>未闭合的段落<b>加粗"
    _no_bug(extract(html, "u"))


@SETTINGS
@given(neutral, neutral, st.integers(min_value=0, max_value=300))
def test_an_article_survives_broken_markup_around_it(before, after, depth):
    article = "".join(f"<p>{p}</p>" for p in ARTICLE)
    html = "<html><body>" + "<div>" * depth + before + f"<div class='main'>{article}</div>" + after
    result = extract(html, "u")
    assert isinstance(result, Article), getattr(result, "detail", "")
    for paragraph in ARTICLE[1:3]:          # the middle of the article is always there
        assert paragraph in result.text
