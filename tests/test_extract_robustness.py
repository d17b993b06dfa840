"""Hypothesis: extract() never raises, whatever text it is given."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extractors import Article, Rejection, extract

TAGS = ["p", "div", "section", "span", "a", "h1", "table", "td", "li", "script", "br", "article", "form"]
fragment = st.recursive(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    lambda children: st.tuples(st.sampled_from(TAGS), st.lists(children, max_size=4), st.booleans()).map(
        lambda t: f"<{t[0]} class='x share'>" + "".join(t[1]) + (f"</{t[0]}>" if t[2] else "")
    ),
    max_leaves=25,
)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.text(max_size=2000))
def test_arbitrary_text(text):
    assert isinstance(extract(text, "u"), (Article, Rejection))


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_decoded_any_way(raw):
    assert isinstance(extract(raw.decode("latin-1"), "u"), (Article, Rejection))
    assert isinstance(extract(raw.decode("utf-8", "replace"), "u"), (Article, Rejection))


@SETTINGS
@given(fragment, st.integers(min_value=0, max_value=3000))
def test_broken_and_nested_html(body, depth):
    html = "<html><body>" + "<div>" * depth + body + "<p>未闭合的段落<b>加粗"
    assert isinstance(extract(html, "u"), (Article, Rejection))
