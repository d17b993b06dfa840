"""The fast paths of extraction give exactly what the plain way gives (issue 11's speed clause).

Each speed-up replaced a straightforward computation by a cheaper one that must agree with it on
every input: here the straightforward one is written out again, plainly, and Hypothesis looks for
a page or a text where the two differ. bench/same_output.py holds the same line on the real sets.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

from hypothesis import HealthCheck, given, settings, strategies as st
from selectolax.lexbor import LexborHTMLParser

from extractors.dedup import content_hash, hash_keys, simhash
from extractors.density import PUNCTUATION, _score, best_container, punctuation_marks
from extractors.dom import ALWAYS_DROP, class_words, outermost, worded
from extractors.genre import compiled
from extractors.lines import _SPACES, BLOCK_TAGS, CJK_CHAR, SENTENCE_PUNCT, TOKEN, cjk_share, real_links, sentence_marks
from extractors.regex import compile_rule, find_all_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = compiled(None)

# pages: nested elements with class/id values that name chrome words or almost do, in any case,
# and text with Chinese and English prose, punctuation, spaces of every kind and notice phrases
NAMES = ["share", "Share-bar", "shareholders", "nav", "navBar", "main", "comment-list", "COMMENTS", "reply",
         "ran\u212a", "\u017fhare", "ad", "header", "x_footer", "related", "post", "hot", ""]
WORDS = ["今天", "城东", "市场", "改造", "刘大姐", "market", "the", "news", "免责声明", "版权所有", "Copyright 2023",
         "，", "。", "、", ",", ".", "!", "“", "”", " ", "  ", "\u3000", "\u00a0", "\t", "\n"]
TAGS = ["div", "p", "span", "a", "ul", "li", "section", "b", "h2", "table", "td", "br", "img"]
text = st.lists(st.sampled_from(WORDS), max_size=12).map("".join)
attributes = st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES), st.booleans()).map(
    lambda t: (f" class='{t[0]}'" if t[0] else "") + (f" id='{t[1]}'" if t[1] else "") + (" href='/x'" if t[2] else ""))
element = st.recursive(
    text,
    lambda children: st.tuples(st.sampled_from(TAGS), attributes, st.lists(children, max_size=4)).map(
        lambda t: f"<{t[0]}{t[1]}>" + "".join(t[2]) + f"</{t[0]}>"),
    max_leaves=30,
)
page = st.lists(element, min_size=1, max_size=4).map(lambda parts: "<html><body>" + "".join(parts) + "</body></html>")


def _tree(html: str) -> LexborHTMLParser:
    tree = LexborHTMLParser(html)
    for node in outermost(tree.css(",".join(sorted(ALWAYS_DROP)))):
        node.decompose()
    return tree


# ---- dom.worded: what 76 substring selectors and the word test found ---------------------------

def _worded_by_selectors(root, words):
    minimal = sorted(w for w in words if not any(o != w and o in w for o in words))
    selector = ",".join(f"[class*={w!r} i],[id*={w!r} i]" for w in minimal)
    seen, out = set(), []
    for node in root.css(selector):
        if node.mem_id not in seen and class_words(node) & words:
            seen.add(node.mem_id)
            out.append(node)
    return out


@SETTINGS
@given(page)
def test_worded_finds_what_the_substring_selectors_found(html):
    body = _tree(html).body
    for words in (RULES.class_words, RULES.hidden_words, frozenset({"rank", "share"})):
        assert [n.mem_id for n in worded(body, words)] == [n.mem_id for n in _worded_by_selectors(body, words)]


def test_worded_folds_ascii_case_only_as_css_does():
    body = _tree("<div class='SHARE'>a</div><div class='ran\u212a'>b</div><div id='x-Nav'>c</div>").body
    assert [n.text() for n in worded(body, frozenset({"share", "rank", "nav"}))] == ["a", "c"]


# ---- density.best_container: every element walked, as it was -----------------------------------

def _plain_best(root, notice, hidden, real):
    """The density choice with every element of the page counted (the code before the speed work)."""
    found = {m.group(0) for m in notice.finditer(root.text(deep=True))}
    phrases = re.compile("|".join(map(re.escape, sorted(found, key=len, reverse=True)))) if found else None
    nodes, parents, depths, chars, links, puncts, linked, unseen, noticed = [], [], [], [], [], [], [], [], []
    index_of = {}
    for node in root.traverse(include_text=True):
        if node.is_text_node:
            value = node.text_content or ""
            i = index_of.get(node.parent.mem_id)
            count = len("".join(value.split()))
            if i is None or unseen[i] or not count:
                continue
            chars[i] += count
            if linked[i]:
                links[i] += count
            else:
                puncts[i] += sum(1 for ch in value if ch in PUNCTUATION)
            if phrases is not None and phrases.search(value):
                noticed.append(i)
            continue
        if not node.is_element_node:
            continue
        parent = index_of.get(node.parent.mem_id, -1) if node.parent is not None else -1
        index_of[node.mem_id] = len(nodes)
        nodes.append(node)
        parents.append(parent)
        depths.append(depths[parent] + 1 if parent >= 0 else 0)
        is_link = node.tag == "a" and node.mem_id in real
        linked.append((linked[parent] if parent >= 0 else False) or is_link)
        unseen.append((unseen[parent] if parent >= 0 else False) or node.mem_id in hidden)
        chars.append(0), links.append(0), puncts.append(0)
    sizes = [1] * len(nodes)
    for i in range(len(nodes) - 1, 0, -1):
        p = parents[i]
        chars[p] += chars[i]
        links[p] += links[i]
        puncts[p] += puncts[i]
        sizes[p] += sizes[i]
    raw = chars[:]
    blocks = set()
    for i in noticed:
        while i > 0 and nodes[i].tag not in BLOCK_TAGS:
            i = parents[i]
        if i > 0 and chars[i] - links[i] <= 600:
            blocks.add(i)
    items, teasing = {}, {}
    for i in range(1, len(nodes)):
        if chars[i] and nodes[i].tag == "li":
            items[parents[i]] = items.get(parents[i], 0) + 1
            if links[i] >= 6 and links[i] >= 0.07 * chars[i] and chars[i] - links[i] >= 20:
                teasing[parents[i]] = teasing.get(parents[i], 0) + 1
    blocks |= {i for i, n in teasing.items() if n >= 3 and n >= 0.6 * items[i] and nodes[i].tag in ("ul", "ol")}
    excluded = [False] * len(nodes)
    discounted = 0
    for i in range(1, len(nodes)):
        p = parents[i]
        if i in blocks and not excluded[p]:
            discounted += 1
            c, n_links, q, a = chars[i], links[i], puncts[i], p
            while a >= 0:
                chars[a] -= c
                links[a] -= n_links
                puncts[a] -= q
                a = parents[a]
        excluded[i] = excluded[p] or i in blocks
    ids = frozenset(nodes[i].mem_id for i in blocks if not excluded[parents[i]])
    scores = [_score(c, n, q) for c, n, q in zip(chars, links, puncts, strict=True)]
    allowed = [i for i in range(len(nodes)) if not excluded[i] and not unseen[i]]
    if not allowed or scores[max(allowed, key=lambda i: scores[i])] <= 0:
        return None
    best = max(allowed, key=lambda i: scores[i])
    near = [i for i in allowed if scores[i] >= 0.93 * scores[best]
            and nodes[i].tag not in ("a", "span", "b", "strong", "em", "i", "font", "u", "small", "big", "label", "p")]
    chosen = max(near, key=lambda i: (depths[i], scores[i])) if near else best
    up, a = [], chosen
    while a >= 0 and len(up) < 4:
        up.append(sizes[a])
        a = parents[a]
    sized = {node.mem_id: raw[i] for i, node in enumerate(nodes)}
    return (nodes[chosen].mem_id, scores[chosen], chars[chosen], links[chosen],
            puncts[chosen] / puncts[0] if puncts[0] else 0.0, discounted, len(nodes), tuple(up), ids), sized


@SETTINGS
@given(page)
def test_density_keeps_only_text_holders_and_chooses_as_if_it_walked_every_element(html):
    tree = _tree(html)
    body = tree.body
    real = real_links(body)
    hidden = frozenset(n.mem_id for n in worded(body, RULES.class_words) if class_words(n) & RULES.hidden_words)
    plain = _plain_best(body, RULES.notice, hidden, real)
    got = best_container(body, RULES.notice, hidden, real, body.text(deep=True))
    if plain is None:
        assert got is None
        return
    want, sized = plain
    assert got is not None
    assert (got.node.mem_id, got.score, got.chars, got.link_chars, got.punct_share, got.notices, got.page_nodes,
            got.nodes_up, got.discounted) == want
    for node in tree.css("*"):   # every element, in the body or not: what prune asks of it
        assert got.size(node) == sized.get(node.mem_id), node.tag


def test_density_counts_subtree_sizes_only_above_the_limit():
    body = _tree("<html><body><div><p>" + "今天城东的市场改造完成了，摊位更宽敞。" * 5 + "</p></div></body></html>").body
    assert best_container(body, RULES.notice).nodes_up == (2, 3)   # the <div> (a <p> is never chosen), <body>
    assert best_container(body, RULES.notice, count_above=3).nodes_up == ()


# ---- text-level counts ---------------------------------------------------------------------------

long_text = st.lists(st.sampled_from(WORDS), max_size=400).map("".join)


@SETTINGS
@given(long_text)
def test_mark_counts_agree_with_a_loop_over_the_characters(value):
    for sample in (value, value * 40 + "。", "，" + value * 40):   # short texts and long ones take different ways
        assert punctuation_marks(sample) == sum(1 for ch in sample if ch in PUNCTUATION)
        assert sentence_marks(sample) == sum(1 for ch in sample if ch in SENTENCE_PUNCT)


@SETTINGS
@given(long_text)
def test_cjk_share_and_spaces_agree_with_the_plain_forms(value):
    squashed = "".join(value.split())
    assert cjk_share([value]) == (len(CJK_CHAR.findall(squashed)) / len(squashed) if squashed else 0.0)
    plain = re.sub(r"[ \t\r\f\v\u00a0\u2000-\u200b\u3000\u202f\u205f\ufeff]+", " ", value)
    assert _SPACES.sub(" ", value) == plain


@SETTINGS
@given(long_text)
def test_notice_phrases_found_on_bytes_are_those_found_on_the_text(value):
    assert find_all_text(RULES.notice, value) == {m.group(0) for m in RULES.notice.finditer(value)}
    mixed = compile_rule(r"[a-z]+\s*声明|ｃｏｐｙ")
    assert find_all_text(mixed, value + "ＣＯＰＹ") == {m.group(0) for m in mixed.finditer(value + "ＣＯＰＹ")}


def _plain_simhash(text: str) -> int:
    words = TOKEN.findall(unicodedata.normalize("NFKC", text).lower())
    if not words:
        return 0
    shingles = ["\x1f".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))]
    hashes = [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") for s in set(shingles)]
    return sum(1 << bit for bit in range(64) if 2 * sum(h >> bit & 1 for h in hashes) > len(hashes))


@SETTINGS
@given(long_text)
def test_simhash_by_byte_columns_is_the_bit_by_bit_majority(value):
    assert simhash(value) == _plain_simhash(value)
    assert hash_keys(value) == (content_hash(value), simhash(value))
