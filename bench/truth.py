"""Check the rows a crawler stored against the demo site's own truth (every body, no boilerplate).

The demo site generates each article from a seed, so it knows the clean text of every page. A crawl
passes when every article URL is stored once, with its title, every paragraph of its body, a
character F1 of at least 0.97 against the truth, and none of the site's chrome or the WeChat
calls-to-action in the text (the bar of tests/test_e2e.py). Only the warehouse file is read
(`articles`: url, title, text), so the check works for sieve and for the Scrapy pipeline alike, and
keeps working while sieve's pipeline changes underneath.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from demo import DemoSite

# What must never be in an article's text: the aggregator's chrome and the WeChat calls-to-action.
BOILERPLATE = (
    "聚热点", "juredian", "搜索建议", "热博", "(展开)", "我唯一的个人微信", "添加请备注来自公众号",
    "免责声明", "本站仅提供", "版权所有", "您当前的位置", "上一篇", "下一篇", "点击上方蓝字",
    "长按识别二维码", "阅读原文", "推荐阅读", "相关阅读", "相关文章", "首页",
)
MIN_F1 = 0.97
_NOT_TEXT = re.compile(r"[\s\W_]+", re.UNICODE)


def char_f1(expected: str, got: str) -> float:
    """F1 over the multiset of characters, punctuation and whitespace ignored (tests/test_e2e.py's metric)."""
    a, b = Counter(_NOT_TEXT.sub("", expected)), Counter(_NOT_TEXT.sub("", got or ""))
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(b.values()), overlap / sum(a.values())
    return 2 * precision * recall / (precision + recall)


def check_rows(db: Path, site: DemoSite) -> dict[str, Any]:
    """Compare `articles` in the DuckDB file `db` with the site's truth; `ok` is the verdict."""
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        return {"ok": False, "error": f"cannot open {db}: {exc}"}
    try:
        rows = con.execute("SELECT url, title, text FROM articles").fetchall()
    except duckdb.Error as exc:
        return {"ok": False, "error": f"cannot read articles (url, title, text): {exc}"}
    finally:
        con.close()
    truth = {a.path: a for a in site.articles()}
    seen: Counter[str] = Counter()
    wrong_title, incomplete, low_f1, leaked, f1s = [], [], [], [], []
    for url, title, text in rows:
        path = urlsplit(url).path
        seen[path] += 1
        article = truth.get(path)
        if article is None:
            continue
        text = text or ""
        if (title or "").strip() != article.title:
            wrong_title.append(path)
        f1 = char_f1(article.text, text)
        f1s.append(f1)
        if any(paragraph not in text for paragraph in article.paragraphs):
            incomplete.append(path)
        if f1 < MIN_F1:
            low_f1.append(path)
        markers = [m for m in BOILERPLATE if m in text]
        if markers:
            leaked.append((path, markers))
    missing = [p for p in truth if p not in seen]
    extra = [p for p in seen if p not in truth]
    twice = [p for p, n in seen.items() if n > 1]
    leak_kinds: Counter[str] = Counter(m for _, markers in leaked for m in markers)
    result = {
        "expected": len(truth), "rows": len(rows), "stored": sum(1 for p in truth if p in seen),
        "missing": len(missing), "extra": len(extra), "stored_twice": len(twice),
        "title_wrong": len(wrong_title), "body_incomplete": len(incomplete), "f1_below_min": len(low_f1),
        "boilerplate_rows": len(leaked),
        "boilerplate_markers": dict(leak_kinds.most_common()),
        "min_f1": round(min(f1s), 4) if f1s else 0.0,
        "median_f1": round(sorted(f1s)[len(f1s) // 2], 4) if f1s else 0.0,
        "examples": {"missing": missing[:3], "title_wrong": wrong_title[:3], "body_incomplete": incomplete[:3],
                     "boilerplate": [p for p, _ in leaked[:3]]},
    }
    result["ok"] = not (missing or extra or twice or wrong_title or incomplete or low_f1 or leaked)
    return result


def verdict_text(check: dict[str, Any]) -> str:
    """One short cell: 'all 5,000 ok' or what failed, counted."""
    if "error" in check:
        return f"check failed: {check['error'][:80]}"
    if check["ok"]:
        return f"all {check['expected']:,} ok"
    bits = [f"{check['stored']:,}/{check['expected']:,} stored"]
    for key, label in (("title_wrong", "title wrong"), ("body_incomplete", "missing body text"),
                       ("boilerplate_rows", "with boilerplate"), ("f1_below_min", f"F1 < {MIN_F1}"),
                       ("stored_twice", "twice"), ("extra", "extra")):
        if check.get(key):
            bits.append(f"{check[key]:,} {label}")
    bits.append(f"median F1 {check['median_f1']:.3f}")
    return ", ".join(bits)
