"""extract(): the public API, text rules, metadata and dedup keys, on small hand-made pages."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

import extractors
from extractors import Article, Rejection, Rules, content_hash, extract, hamming, rules_version, simhash

GOLDEN_DIR = __import__("pathlib").Path(__file__).parent / "golden"
PARAS = [
    "今年夏天,城东的老菜市场完成了改造,摊位从原来的一百二十个减少到九十个,但每个摊位都更宽敞了。",
    "改造后的市场装上了新风系统和统一的电子秤,顾客可以在出口处免费复秤,缺斤少两的投诉少了一大半。",
    "卖豆腐的刘大姐在这里干了十五年,她说最大的变化是地面不再湿滑,下雨天也不用穿雨靴了。",
    "市场管理方表示,下一步还将引入线上下单、线下自提的服务,方便上班族晚上取菜。",
]


def page(body: str, title: str = "老菜市场改造记", head: str = "") -> str:
    return f"<html><head><meta charset='utf-8'><title>{title}-聚热点网</title>{head}</head><body><h1>{title}</h1>{body}</body></html>"


def article_html(extra_tail: str = "", extra_head: str = "") -> str:
    body = "".join(f"<p>{p}</p>" for p in PARAS)
    return page(f"<div class='c'>{extra_head}{body}{extra_tail}</div>")


def test_public_surface():
    assert set(extractors.__all__) >= {"extract", "Rules", "Article", "Rejection", "EXTRACTOR_VERSION",
                                       "rules_version", "content_hash", "simhash", "hamming"}
    assert isinstance(extractors.EXTRACTOR_VERSION, str) and extractors.EXTRACTOR_VERSION


def test_article_fields_and_versions():
    result = extract(article_html(), "https://www.juredian.com/news/1.html")
    assert isinstance(result, Article)
    assert result.title == "老菜市场改造记"
    assert result.text.split("\n") == PARAS
    assert result.content_hash == content_hash(result.text)
    assert 0 <= result.simhash < 2**64
    assert result.extractor_version == extractors.EXTRACTOR_VERSION
    assert result.rules_version == rules_version(None)


def test_rules_version_follows_rule_content():
    assert rules_version(None) != rules_version(Rules(cut_at=("^完$",)))
    assert rules_version(Rules(cut_at=("^完$",))) == rules_version(Rules(cut_at=("^完$",)))


def test_deterministic_across_processes_and_hash_seeds():
    """Same page, same rules: the same Article in another process with another hash seed (set and
    dict order must not leak into the text) and after other pages were extracted (no state)."""
    import json as json_
    import os
    import subprocess
    import sys

    from flows.evaluate import load_dataset

    pages = [p for p in load_dataset(GOLDEN_DIR) if p.expected_text is not None][:12]
    here = [extract(p.html, p.url, p.rules, fetched_at=p.fetched_at) for p in reversed(pages)][::-1]
    script = (
        "import json, sys\n"
        "from flows.evaluate import load_dataset\n"
        "from extractors import extract\n"
        f"pages = [p for p in load_dataset({str(GOLDEN_DIR)!r}) if p.expected_text is not None][:12]\n"
        "out = [extract(p.html, p.url, p.rules, fetched_at=p.fetched_at) for p in pages]\n"
        "print(json.dumps([[a.text, a.title, a.content_hash, a.simhash, list(a.flags)] for a in out]))\n"
    )
    for seed in ("1", "4242"):
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONHASHSEED": seed}, cwd=str(GOLDEN_DIR.parent.parent))
        assert run.returncode == 0, run.stderr[-2000:]
        there = json_.loads(run.stdout)
        assert there == [[a.text, a.title, a.content_hash, a.simhash, list(a.flags)] for a in here]


def test_wechat_ctas_at_both_ends_go_and_real_lines_stay():
    html = article_html(
        extra_head="<p>点击上方蓝字关注我们</p>",
        extra_tail="<p>长按识别二维码关注</p><p>点个在看</p><p>我唯一的个人微信</p><p>添加请备注来自公众号</p>",
    )
    text = extract(html, "u").text
    assert text.split("\n") == PARAS


def test_cut_at_marker_line_only_when_it_is_the_whole_line():
    tail = "<p>推荐阅读</p><p><a href='/1'>菜价为什么又涨了</a></p><p><a href='/2'>五个挑西瓜的办法</a></p>"
    text = extract(article_html(tail), "u").text
    assert "推荐阅读" not in text and "西瓜" not in text
    inline = "<p>我在推荐阅读里看到了这篇文章,于是决定去市场看一看,没想到变化这么大。</p>"
    assert "我在推荐阅读里看到了这篇文章" in extract(article_html(inline), "u").text


def test_cap_keeps_text_when_a_rule_would_remove_more_than_a_third():
    rules = Rules(cut_at=("^今年夏天",))  # a source rule that matches the first real paragraph...
    html = page("<div class='c'><p>导语:市场的故事。</p>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</div>")
    result = extract(html, "u", rules)
    assert "rules_capped" in result.flags
    assert all(p in result.text for p in PARAS)


def test_source_rules_strip_prefix_drop_lines_and_selector():
    rules = Rules(content_selector="div.zw", strip_prefix=("^【本报讯】",), drop_lines=("^责任编辑.*$",),
                  drop_selectors=("div.zw .promo",))
    body = ("<div class='side'>" + "".join(f"<p>侧栏第{i}条新闻标题,点击查看详情。</p>" for i in range(10)) + "</div>"
            "<div class='zw'><p>【本报讯】" + PARAS[0] + "</p>" + "".join(f"<p>{p}</p>" for p in PARAS[1:])
            + "<div class='promo'>限时优惠,扫码领券</div><p>责任编辑:王五</p></div>")
    text = extract(page(body), "u", rules).text
    assert text.split("\n") == PARAS


def test_short_real_paragraph_and_repeated_paragraph_survive():
    paras = PARAS[:2] + ["P用没有。"] + PARAS[2:] + [PARAS[1]]
    html = page("<div class='c'>" + "".join(f"<p>{p}</p>" for p in paras) + "<p>我唯一的个人微信</p></div>")
    text = extract(html, "u").text
    assert text.split("\n") == paras


@pytest.mark.parametrize("head, want", [
    ("<meta property='article:published_time' content='2023-05-12T10:20:00+08:00'>", "2023-05-12T10:20:00+08:00"),
    ("", None),
])
def test_date_from_meta_or_none(head, want):
    html = page("<div class='c'>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</div>"
                "<ul class='x'><li><a href='/news/20230512/1.html'>别的新闻</a> 2023-05-12</li></ul>", head=head)
    got = extract(html, "u").published_at
    assert (got.isoformat() if got else None) == want


@pytest.mark.parametrize("info, want", [
    ("2023年05月12日 10:20 来源:城市日报", "2023-05-12T10:20:00+08:00"),
    ("2023年05月12日", "2023-05-12T00:00:00+08:00"),
    ("2022年11月3日 作者:周明", "2022-11-03T00:00:00+08:00"),
    ("3小时前", "2026-11-27T09:00:00+08:00"),
    ("昨天 09:27", "2026-11-26T09:27:00+08:00"),
    ("发布时间:2024-03-08 09:15:00", "2024-03-08T09:15:00+08:00"),
])
def test_chinese_info_line_dates(info, want):
    html = page(f"<div class='info'>{info}</div><div class='c'>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</div>")
    fetched = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    article = extract(html, "u", fetched_at=fetched)
    assert article.published_at.isoformat() == want
    assert info not in article.text


def test_relative_date_without_fetch_time_is_none():
    html = page("<div class='info'>3小时前</div><div class='c'>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</div>")
    assert extract(html, "u").published_at is None


def test_wechat_page_title_account_and_unix_time():
    html = ("<html><head><meta property='og:title' content='菜市场的早晨'></head><body>"
            "<h1 id='activity-name'> 菜市场的早晨 </h1><a id='js_name'>街坊日记</a>"
            "<div id='js_content' style='visibility: hidden;'>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</div>"
            "<script>var ct = \"1683858000\";</script></body></html>")
    article = extract(html, "https://mp.weixin.qq.com/s/x")
    assert article.title == "菜市场的早晨"
    assert article.account == "街坊日记"
    assert article.published_at.isoformat() == "2023-05-12T10:20:00+08:00"
    assert article.text.split("\n") == PARAS


def test_title_site_suffix_removed_without_h1():
    html = "<html><head><title>老菜市场改造记_聚热点</title></head><body>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</body></html>"
    assert extract(html, "u").title == "老菜市场改造记"


@pytest.mark.parametrize("html, reason", [("", "empty"), ("   ", "empty"), ("<html><body><p>短</p></body></html>", "too_short")])
def test_rejections(html, reason):
    result = extract(html, "u")
    assert isinstance(result, Rejection) and result.reason == reason


def test_list_page_rejected():
    items = "".join(f"<li><a href='/n/{i}.html'>第{i}条:城市新闻标题示例文字</a><span>{i}小时前</span></li>" for i in range(15))
    html = page(f"<ul>{items}</ul><div><a href='/2'>下一页</a></div>", title="新闻列表")
    result = extract(html, "u")
    assert isinstance(result, Rejection) and result.reason == "list_page"


def test_nbsp_and_whitespace_normalised_punctuation_kept():
    html = page("<div class='c'>" + "".join(f"<p>{p}</p>" for p in PARAS) + "<p>第\u00a0258\u00a0封信,  完。</p></div>")
    text = extract(html, "u").text
    assert "第 258 封信, 完。" in text and "\u00a0" not in text


def test_content_hash_ignores_whitespace_and_width():
    assert content_hash("你好, 世界\n第二段") == content_hash("你好,世界第二段")
    assert content_hash("ＡＢＣ１２３") == content_hash("ABC123")
    assert content_hash("你好") != content_hash("您好")


def test_simhash_near_duplicates_are_close_and_others_far():
    text = "\n".join(PARAS * 2)
    near = text.replace("刘大姐", "王大姐") + "\n本文转载自聚热点。"
    other = "The quick brown fox jumps over the lazy dog, again and again, for a very long time. " * 5
    assert hamming(simhash(text), simhash(text)) == 0
    assert hamming(simhash(text), simhash(near)) <= 8
    assert hamming(simhash(text), simhash(other)) >= 16
    assert hamming(0, 2**64 - 1) == 64


def test_deeply_nested_page_still_yields_its_article():
    html = "<div>" * 5000 + "".join(f"<p>{p}</p>" for p in PARAS) + "</div>" * 5000
    result = extract(html, "u")
    assert isinstance(result, Article), getattr(result, "detail", "")
    assert result.text.split("\n") == PARAS


def test_an_article_inside_an_unclosed_link_is_not_link_text():
    # the parser re-opens the <a> in every paragraph: <p><a href=/x>paragraph</a></p>, four times
    body = "<div class='c'><a href='/author/9'>作者主页" + "".join(f"<p>{p}</p>" for p in PARAS) + "</div>"
    result = extract(page(body), "u")
    assert isinstance(result, Article), getattr(result, "detail", "")
    assert all(p in result.text for p in PARAS)


def test_a_bug_is_internal_error_not_a_crash(monkeypatch, caplog):
    import extractors.pipeline as pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "read_meta", broken)
    result = extract(article_html(), "u")
    assert isinstance(result, Rejection) and result.reason == "internal_error" and "boom" in result.detail
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
