"""extractors.scoring on texts whose precision, recall and F1 are known by hand: the metrics every
gate (golden floors, the real-page gate, sieve eval) stands on."""
from __future__ import annotations

import pytest

from extractors.scoring import char_scores, char_units, leaked_lines, token_scores, tokens


def test_char_scores_known_values():
    # got 6 counted characters, want 4, 3 shared (空格和标点不计): P 3/6, R 3/4, F1 = 2PR/(P+R) = 0.6
    s = char_scores("甲乙丙丁戊己", "甲乙丙庚")
    assert (s.precision, s.recall) == (0.5, 0.75)
    assert s.f1 == pytest.approx(0.6)


def test_char_scores_ignore_whitespace_and_punctuation_and_fold_width():
    assert char_scores("你好，世界！\n ＡＢＣ", "你好世界ABC").f1 == 1.0
    assert char_units("a,b a") == {"a": 2, "b": 1}


def test_char_scores_edges():
    assert char_scores("", "").f1 == 1.0
    nothing = char_scores("", "甲乙")
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)
    disjoint = char_scores("甲乙", "丙丁")
    assert disjoint.f1 == 0.0
    repeated = char_scores("甲甲甲甲", "甲")          # a bag: repeats count, extra copies are wrong
    assert (repeated.precision, repeated.recall) == (0.25, 1.0)
    assert repeated.f1 == pytest.approx(0.4)


def test_token_scores_cjk_characters_and_english_words():
    assert tokens("The cat 和 THE dog, 猫狗") == {"the": 2, "cat": 1, "和": 1, "dog": 1, "猫": 1, "狗": 1}
    s = token_scores("the cat sat on the mat", "the cat sat")      # got 6 tokens, want 3, 3 shared
    assert (s.precision, s.recall) == (0.5, 1.0)
    assert s.f1 == pytest.approx(2 / 3)
    mixed = token_scores("发改委 Price cap 5%", "发改委 price")     # got 6 (发 改 委 price cap 5), shared 4
    assert mixed.precision == pytest.approx(4 / 6) and mixed.recall == 1.0


def test_leaked_lines_ignore_whitespace():
    text = "正文第一段。\n我唯一的 个人微信\n正文第二段。"
    assert leaked_lines(text, ["我唯一的个人微信", "添加请备注来自公众号"]) == ["我唯一的个人微信"]
    assert leaked_lines(text, [""]) == []
