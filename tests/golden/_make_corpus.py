"""Builds the golden corpus files from _articles.py and a handful of page templates.

Run once by hand (`python tests/golden/_make_corpus.py`); the generated files are committed and
are the corpus. Expected text = the article's paragraphs, one per line (the title is NOT part of
the text: it is checked separately as `title`). Nothing here runs the extractor.
"""
from __future__ import annotations

import html
import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _articles import EN, SEED_PARAGRAPHS, SEED_TITLE, ZH  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
e = html.escape

TEASERS = [
    ("欠款不还会坐牢吗", "欠钱不还属民事行为,一般不会因此而构成刑事犯罪,也就不会坐牢。除非你确有能力归还而拒不执行法院的民事判决、裁定的,或在法院采取强制执行措施时你故意暴力抗拒等。此...(展开)"),
    ("中国教育,路在何方?", "想必大家都听过点石成金的故事吧,古人也说过,授人以鱼不如授人以渔。而放眼现在的教育乱像,谁还要渔了,都是奔着鱼????来的。过高期望值,导致教育已经极端功利化,...(展开)"),
    ("手机充电一夜会不会爆炸", "很多人习惯睡前给手机充电,一充就是一整夜。其实现在的手机都有充电保护,充满以后会自动停止大电流充电,但长期满电状态对电池寿命仍有一定影响...(展开)"),
]
SIDEBAR_LINKS = ["高铁票改签新规今起实施", "今年秋天最流行的三种颜色", "专家解读:房贷利率还会降吗", "这五种食物千万别放冰箱", "十一假期出行指南来了"]


def paras_html(paragraphs: list[str], wechat: bool = False) -> str:
    out = []
    for i, p in enumerate(paragraphs):
        if wechat:
            out.append(f'<p style="margin: 0 8px;"><span style="font-size: 15px;color: rgb(62, 62, 62);">{e(p)}</span></p>')
            if i % 4 == 3:
                out.append('<p><br></p><section style="text-align:center"><img data-src="https://mmbiz.qpic.cn/mmbiz_jpg/x/640?wx_fmt=jpeg" class="rich_pages"></section>')
        else:
            out.append(f"<p>{e(p)}</p>")
    return "\n".join(out)


def teaser_block(cls: str = "search-suggest") -> str:
    items = "".join(
        f'<li><div class="t"><span>热博</span></div><h3>&nbsp;<a href="/news/{i}.html">{e(t)}</a></h3><p>{e(s)}</p></li>'
        for i, (t, s) in enumerate(TEASERS)
    )
    return f'<div class="{cls}"><div class="tit">搜索建议:</div><ul>{items}</ul></div>'


def teaser_lines() -> list[str]:
    return [s for _, s in TEASERS] + ["搜索建议"]


def head(title: str, extra: str = "", charset: str = "utf-8") -> str:
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="{charset}"><title>{e(title)}</title>'
            f'<meta name="viewport" content="width=device-width"><link rel="stylesheet" href="/static/css/main.css">'
            f'<script>var _hmt = _hmt || [];(function(){{var hm=document.createElement("script");}})();</script>{extra}</head>')


def sidebar(cls: str = "side-box") -> str:
    links = "".join(f'<li><a href="/news/20230512/{i}.html">{e(t)}</a><span class="time">2023-05-12</span></li>' for i, t in enumerate(SIDEBAR_LINKS))
    return f'<div class="{cls}"><h3>热门推荐</h3><ul>{links}</ul></div>'


def juredian(title: str, paragraphs: list[str], *, tail: list[str], body_cls: str = "content",
             suggest_cls: str = "search-suggest", suggest_inside: bool = False, title_suffix: str = "-聚热点网",
             sidebar_first: bool = False, cut_word: str | None = None) -> str:
    suggest = teaser_block(suggest_cls)
    tail_html = "".join(f"<p>{e(t)}</p>" for t in tail)
    body = paras_html(paragraphs, wechat=True) + tail_html
    if cut_word:
        body += f"<p><strong>{cut_word}</strong></p>" + "".join(f'<p><a href="/news/{i}.html">{e(t)}</a></p>' for i, t in enumerate(SIDEBAR_LINKS))
    if suggest_inside:
        body += suggest
        suggest = ""
    article = (f'<div class="art-main"><h1 class="title">{e(title)}</h1>'
               f'<div class="{body_cls}"><section style="box-sizing: border-box;">{body}</section></div>{suggest}</div>')
    header = '<div class="top-bar"><div class="logo"><a href="/">聚热点</a> juredian</div></div>'
    side = ('<div class="l-box"><h3>热博</h3>'
            + "".join(f'<div class="item"><h4><a href="/news/{i}.html">{e(t)}</a></h4><p>{e(s)}</p></div>' for i, (t, s) in enumerate(TEASERS))
            + "</div>")
    main = (side + f'<div class="r-box">{article}</div>') if sidebar_first else (article + side)
    return head(title + title_suffix) + f"<body>{header}<div class=\"wrap\">{main}</div></body></html>"


def portal(title: str, paragraphs: list[str], *, info: str, extra_head: str = "", recommend: str | None = None,
           site: str = "_城市资讯网") -> str:
    rec = ""
    if recommend:
        rec = f'<div class="art-recommend-x"><p>{recommend}</p><ul>' + "".join(f'<li><a href="/a/{i}.html">{e(t)}</a></li>' for i, t in enumerate(SIDEBAR_LINKS)) + "</ul></div>"
    return (head(title + site, extra_head)
            + '<body><div class="topnav"><a href="/">首页</a> <a href="/news">新闻</a> <a href="/society">社会</a></div>'
            + '<div class="pos">您当前的位置:<a href="/">首页</a> &gt; <a href="/society">社会</a> &gt; 正文</div>'
            + f'<div class="article-wrap"><h1>{e(title)}</h1><div class="art-info">{e(info)}</div>'
            + f'<div class="art-body">{paras_html(paragraphs)}</div>'
            + '<div class="note"><p>免责声明:本文来源于网络,版权归原作者所有,本站仅提供信息存储空间服务,如有侵权请联系删除。</p></div>'
            + '<div class="pn"><p>上一篇:<a href="/a/1.html">全市新增公共停车位两千个</a></p><p>下一篇:<a href="/a/2.html">秋季流感疫苗开始接种</a></p></div>'
            + rec + "</div>"
            + sidebar("right-col")
            + '<div class="bottom">Copyright © 2016-2024 城市资讯网 版权所有 备案号:京ICP备00000000号</div></body></html>')


PORTAL_BOILER = ["您当前的位置", "免责声明", "本站仅提供信息存储空间服务", "上一篇", "下一篇", "全市新增公共停车位两千个", "版权所有"]
SEED_BOILER = ["聚热点", "我唯一的个人微信", "添加请备注来自公众号", "搜索建议", "热博", "(展开)", "欠款不还会坐牢吗"]


def write(name: str, page: str, text: list[str] | None, *, title: str | None, published_at: str | None,
          boilerplate: list[str], url: str, rules: dict | None = None, encoding: str = "utf-8",
          fetched_at: str | None = None, rejection: str | None = None) -> None:
    (HERE / f"{name}.html").write_bytes(page.encode(encoding))
    if text is not None:
        (HERE / f"{name}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    spec = {"url": url, "title": title, "published_at": published_at, "source_rules": rules,
            "boilerplate": boilerplate}
    if fetched_at:
        spec["fetched_at"] = fetched_at
    if rejection:
        spec["rejection"] = rejection
    (HERE / f"{name}.json").write_text(json.dumps(spec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def iso(y, mo, d, h=0, mi=0, s=0) -> str:
    return datetime(y, mo, d, h, mi, s, tzinfo=SH).isoformat()


def build() -> None:
    for old in HERE.glob("*.html"):
        if old.name.startswith("pattern_"):   # written by _make_patterns.py
            continue
        for suffix in (".html", ".txt", ".json"):
            old.with_suffix(suffix).unlink(missing_ok=True)
    J = "https://www.juredian.com/news/"

    # 1. the seed page, rebuilt faithfully (NBSPs where the seed has them)
    seed = [p.replace("toby 的", "toby\u00a0的").replace("258 封信", "258\u00a0封信") for p in SEED_PARAGRAPHS]
    page = juredian(SEED_TITLE, seed, tail=["我唯一的个人微信", "添加请备注来自公众号"])
    write("juredian_seed", page, SEED_PARAGRAPHS, title=SEED_TITLE, published_at=None,
          boilerplate=SEED_BOILER, url=J + "a7e127e5a74ce577.html")

    # 2. juredian, class names that say nothing, suggestions inside the article container
    t, ps = ZH["bakery"]
    page = juredian(t, ps, tail=["我唯一的个人微信", "添加请备注来自公众号"], body_cls="c2", suggest_cls="c3", suggest_inside=True)
    write("juredian_nosel", page, ps, title=t, published_at=None, boilerplate=SEED_BOILER, url=J + "b1.html")

    # 3. juredian, sidebar with teasers first in the document
    t, ps = ZH["rural_teacher"]
    page = juredian(t, ps, tail=["扫码关注,获取更多乡村教育故事"], sidebar_first=True, title_suffix="_聚热点")
    write("juredian_sidebar_first", page, ps, title=t, published_at=None,
          boilerplate=SEED_BOILER + ["扫码关注"], url=J + "b2.html")

    t, ps = ZH["sports"]
    page = juredian(t, ps, tail=[], sidebar_first=True, body_cls="x1", suggest_cls="x2", suggest_inside=True)
    write("juredian_sidebar_nosel", page, ps, title=t, published_at=None, boilerplate=SEED_BOILER, url=J + "b3.html")

    # 4. juredian with cut-off markers inside the article container
    for name, key, word in (("juredian_xiangguan", "tea_market", "相关阅读"), ("juredian_caini", "ai_office", "猜你喜欢"),
                            ("juredian_wangqi", "startup_failure", "往期推荐")):
        t, ps = ZH[key]
        page = juredian(t, ps, tail=["点个在看,你最好看"], body_cls="b", suggest_cls="s", cut_word=word)
        write(name, page, ps, title=t, published_at=None,
              boilerplate=SEED_BOILER + [word, "点个在看", SIDEBAR_LINKS[0]], url=J + name + ".html")

    # 5. portal style: breadcrumb, info line, disclaimer, prev/next, sidebar, copyright
    cases = [
        ("portal_news", "portal_news", "时间:2023年05月12日 10:20 来源:城市观察 作者:林晓 浏览:1024", iso(2023, 5, 12, 10, 20), None),
        ("portal_battery", "ev_battery", "2022年11月3日 来源:新能源周刊 作者:周明", iso(2022, 11, 3), "推荐阅读"),
        ("portal_property", "property_mgmt", "发布时间:2024-03-08 09:15:00 | 来源:社区报", iso(2024, 3, 8, 9, 15), None),
        ("portal_typhoon", "typhoon", "2019/08/10 14:30 来源:沿海日报", iso(2019, 8, 10, 14, 30), "相关阅读"),
        ("portal_night_market", "night_market", "时间:2023-07-21 来源:本站原创 阅读:(3562)", iso(2023, 7, 21), "推荐阅读:"),
    ]
    for name, key, info, date, rec in cases:
        t, ps = ZH[key]
        page = portal(t, ps, info=info, recommend=rec)
        write(name, page, ps, title=t, published_at=date, boilerplate=PORTAL_BOILER + [info[:12]], url=f"https://news.example.cn/a/{name}.html")

    # 6. WeChat republication on an aggregator: calls-to-action at both ends
    for name, key, account in (("wechat_style_finance", "wechat_repost", "普通人理财"), ("wechat_style_canteen", "community_canteen", "街坊日记")):
        t, ps = ZH[key]
        top = [f"点击上方“{account}”蓝字关注我们", "↑ 点击上方蓝字关注"]
        bottom = ["- END -", "长按识别二维码关注我们", "点个在看,分享到朋友圈", "欢迎关注" + account]
        body = ("".join(f"<p>{e(x)}</p>" for x in top[:1]) + paras_html(ps, wechat=True)
                + '<p><img data-src="https://mmbiz.qpic.cn/qr.jpg"></p>' + "".join(f"<p>{e(x)}</p>" for x in bottom[1:]))
        page = (head(t + "_聚热点") + '<body><div class="top-bar">聚热点 juredian</div>'
                + f'<div class="main"><h1>{e(t)}</h1><div class="meta">来源:{e(account)}</div>'
                + f'<div class="rich_media_content">{body}</div>{teaser_block()}</div></body></html>')
        write(name, page, ps, title=t, published_at=None, boilerplate=SEED_BOILER + ["蓝字关注", "长按识别二维码", "点个在看", "欢迎关注"],
              url=J + name + ".html")

    # 7. a raw WeChat page (mp.weixin.qq.com): body hidden by style, date in `var ct`
    t, ps = ZH["wechat_raw"]
    ct = int(datetime(2023, 7, 16, 10, 40, tzinfo=SH).timestamp())
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{e(t)}</title>'
            f'<meta property="og:title" content="{e(t)}"><meta property="og:site_name" content="微信公众平台"></head><body>'
            f'<div id="img-content" class="rich_media_wrp"><h1 class="rich_media_title" id="activity-name">\n  {e(t)}\n</h1>'
            '<div id="meta_content"><span id="copyright_logo">原创</span> <span id="js_author_name">林一</span> '
            '<span class="rich_media_meta_nickname" id="profileBt"><a id="js_name">城市漫步指南</a></span> <em id="publish_time"></em></div>'
            f'<div class="rich_media_content js_underline_content" id="js_content" style="visibility: hidden;">'
            f'<p>点击上方蓝字关注我们</p>{paras_html(ps, wechat=True)}'
            '<p style="color: rgba(255,255,255,0);font-size:1px">本文禁止转载抄袭</p>'
            '<p>长按识别二维码关注我们</p></div>'
            '<div id="js_tags" class="article-tag__list">#城市 #散步</div></div>'
            '<div class="rich_media_tool" id="js_toobar3"><a id="js_view_source">阅读原文</a> 阅读 1.2万 在看 88</div>'
            f'<script>var nickname = htmlDecode("城市漫步指南"); var ct = "{ct}"; var msg_title = \'{t}\';</script></body></html>')
    write("wechat_raw", page, ps, title=t, published_at=iso(2023, 7, 16, 10, 40),
          boilerplate=["蓝字关注", "长按识别二维码", "阅读原文", "本文禁止转载抄袭", "在看 88"], url="https://mp.weixin.qq.com/s/AbCdEf123")

    # 8. minimal markup: text and <br> only
    t, ps = ZH["minimal"]
    page = f"<html><head><title>{e(t)} - 聚热点</title></head><body>聚热点 juredian<br>{e(t)}<br><br>" + "<br>\n".join(e(p) for p in ps) + "<br><br>我唯一的个人微信<br>添加请备注来自公众号</body></html>"
    write("minimal_markup", page, ps, title=t, published_at=None, boilerplate=["聚热点", "我唯一的个人微信", "添加请备注"], url=J + "m1.html")

    # 9. GBK page with only a <meta> charset (stored as GBK bytes)
    t, ps = ZH["gbk_article"]
    page = (head(t + "-聚热点网", charset="gbk") + '<body><div class="top-bar">聚热点 juredian</div>'
            + f'<div class="wrap"><h1>{e(t)}</h1><p class="info">发布时间:2021年09月01日 08:30</p>'
            + f'<div class="c">{paras_html(ps)}<p>我唯一的个人微信</p><p>添加请备注来自公众号</p></div>{teaser_block("c9")}</div></body></html>')
    write("gbk_meta_only", page, ps, title=t, published_at=iso(2021, 9, 1, 8, 30), boilerplate=SEED_BOILER,
          url=J + "gbk.html", encoding="gbk")

    # 10. dates: relative, yesterday, none (while sidebar links carry dates)
    fetched = "2026-11-27T12:00:00+08:00"
    for name, key, info, date in (("date_hours_ago", "relative_hours", "3小时前 来源:市防汛指挥部", iso(2026, 11, 27, 9, 0)),
                                  ("date_yesterday", "yesterday", "昨天 09:27 作者:老何书店", iso(2026, 11, 26, 9, 27))):
        t, ps = ZH[key]
        page = (head(t + "-聚热点网") + '<body><div class="top-bar">聚热点 juredian</div>'
                + f'<div class="wrap"><h1>{e(t)}</h1><div class="src">{e(info)}</div><div class="c">{paras_html(ps)}</div>{sidebar()}</div></body></html>')
        write(name, page, ps, title=t, published_at=date, boilerplate=["聚热点", info], url=J + name + ".html", fetched_at=fetched)
    t, ps = ZH["no_date"]
    page = (head(t + "-聚热点网") + '<body><div class="top-bar">聚热点 juredian</div>'
            + f'<div class="wrap"><h1>{e(t)}</h1><div class="c">{paras_html(ps)}</div>'
            + '<div class="more"><ul>' + "".join(f'<li><a href="/news/20230512/{i}.html">{e(x)}</a> 2023-05-12 10:20</li>' for i, x in enumerate(SIDEBAR_LINKS)) + "</ul></div>"
            + "</div></body></html>")
    write("date_none_sidebar_dates", page, ps, title=t, published_at=None, boilerplate=["聚热点", SIDEBAR_LINKS[1]], url=J + "nd.html")

    # 11. lines that merely contain genre words; short real paragraphs
    for name, key in (("tricky_lines", "search_words"), ("short_paragraph", "reading_habit")):
        t, ps = ZH[key]
        page = juredian(t, ps, tail=["我唯一的个人微信", "添加请备注来自公众号"], body_cls="x", suggest_cls="y", suggest_inside=True)
        write(name, page, ps, title=t, published_at=None, boilerplate=SEED_BOILER, url=J + name + ".html")

    # 12. a source that declares its own rules
    t, ps = ZH["source_rules"]
    body_ps = ["【港城晚报】" + ps[0]] + ps[1:]
    page = (head(t + "|港城晚报") + '<body><div class="hd">港城晚报 数字报</div><div class="box">'
            + f'<div class="tt"><h1>{e(t)}</h1></div><div class="zw">{paras_html(body_ps)}<p>— 完 —</p><p>本文由港城晚报融媒体中心编辑</p>'
            + '<div class="ad-slot-x">港城房产:海景洋房火热认购中,咨询电话400-000-0000</div><p>记者:王涛 编辑:李楠</p></div>'
            + '<div class="zw-foot">更多报道请下载港城晚报客户端</div></div></body></html>')
    rules = {"content_selector": "div.zw", "drop_selectors": ["div.ad-slot-x"], "cut_at": ["^— 完 —$"],
             "drop_lines": ["^本文由.*编辑$"], "strip_prefix": ["^【港城晚报】"]}
    write("source_rules", page, ps, title=t, published_at=None,
          boilerplate=["【港城晚报】", "— 完 —", "海景洋房", "下载港城晚报客户端", "融媒体中心"], url="https://www.gcwb.example.cn/zw/1.html", rules=rules)

    # 13. more layouts: title only in og:title/<title>; site suffix; short article; a table
    t, ps = ZH["museum_night"]
    page = (head(t + " - 聚热点", f'<meta property="og:title" content="{e(t)}"><meta property="article:published_time" content="2024-06-14T19:30:00+08:00">')
            + f'<body><div class="top-bar">聚热点 juredian</div><div class="post"><div class="post-title">{e(t)}</div>'
            + f'<div class="post-body">{paras_html(ps)}<p>我唯一的个人微信</p></div>{teaser_block()}</div></body></html>')
    write("og_title_meta_date", page, ps, title=t, published_at="2024-06-14T19:30:00+08:00", boilerplate=SEED_BOILER, url=J + "og.html")

    t, ps = ZH["cold_chain"]
    page = juredian(t, ps, tail=["添加请备注来自公众号"], title_suffix="_聚热点")
    write("title_suffix_underscore", page, ps, title=t, published_at=None, boilerplate=SEED_BOILER, url=J + "cc.html")

    t, ps = ZH["short_note"]
    page = juredian(t, ps, tail=[], title_suffix="-聚热点网")
    write("short_article", page, ps, title=t, published_at=None, boilerplate=SEED_BOILER, url=J + "sn.html")

    t, ps = ZH["table_article"]
    rows = [r.split(" ") for r in ps[1:7]]
    table = "<table>" + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>"
    page = (head(t + "-聚热点网") + f'<body><div class="top-bar">聚热点 juredian</div><div class="wrap"><h1>{e(t)}</h1><div class="c">'
            + f"<p>{e(ps[0])}</p>{table}{paras_html(ps[7:])}<p>我唯一的个人微信</p></div>{teaser_block()}</div></body></html>")
    write("table_article", page, ps, title=t, published_at=None, boilerplate=SEED_BOILER, url=J + "tb.html")

    t, ps = ZH["hometown_river"]
    page = juredian(t, ps, tail=["长按识别二维码,关注我们", "微信号:hometown_river"], title_suffix="-聚热点网")
    write("juredian_cta_id", page, ps, title=t, published_at=None, boilerplate=SEED_BOILER + ["长按识别二维码", "hometown_river"], url=J + "hr.html")

    # 14. list pages (not articles)
    items = [(ZH[k][0], ZH[k][1][0][:70]) for k in ("bakery", "rural_teacher", "ev_battery", "tea_market", "reading_habit", "community_canteen", "night_market", "ai_office", "typhoon", "museum_night")]
    lis = "".join(f'<div class="item"><h3><a href="/news/{i}.html">{e(t)}</a></h3><p>{e(s)}...(展开)</p><span>{i + 1}小时前</span></div>' for i, (t, s) in enumerate(items))
    page = (head("今日新鲜事_今日新闻头条最新消息_热点头条新闻-聚热点网") + '<body><div class="top-bar">聚热点 juredian</div>'
            + f'<div class="list">{lis}</div><div class="pages"><a href="/">首页</a> <a href="/list/1">上一页</a> <a href="/list/1">1</a> <a href="/list/2">2</a> <a href="/list/3">下一页</a> <a href="/list/99">尾页</a></div></body></html>')
    write("list_juredian", page, None, title=None, published_at=None, boilerplate=[], url="https://www.juredian.com/list/2.html", rejection="list_page")
    lis = "".join(f'<li><a href="/a/{i}.html">{e(t)}</a><span class="date">2024-0{1 + i % 9}-1{i % 9}</span></li>' for i, (t, _) in enumerate(items + [(x, "") for x in SIDEBAR_LINKS]))
    page = (head("社会新闻_城市资讯网") + '<body><div class="pos">您当前的位置:<a href="/">首页</a> &gt; 社会</div>'
            + f'<div class="news-list"><ul>{lis}</ul></div><div class="page">共15条 <a href="?p=2">下一页</a></div></body></html>')
    write("list_portal", page, None, title=None, published_at=None, boilerplate=[], url="https://news.example.cn/society/", rejection="list_page")
    posts = [(EN[k][0], EN[k][1][0]) for k in EN] + [("Notes on moving house", "We moved last month, and these are the things I wish I had known before the boxes arrived."),
                                                    ("A year of bread baking", "Sourdough taught me patience, and also how to clean flour out of a keyboard.")]
    arts = "".join(f'<article><h2><a href="/posts/{i}">{e(t)}</a></h2><p>{e(s[:90])}</p><a href="/posts/{i}">Read more</a></article>' for i, (t, s) in enumerate(posts))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Blog - Page 2</title></head><body><header><a href="/">My Blog</a></header>'
            f'<main>{arts}</main><div class="paging"><a href="/page/1">Newer posts</a> <a href="/page/3">Older posts</a></div></body></html>')
    write("list_english_blog", page, None, title=None, published_at=None, boilerplate=[], url="https://blog.example.com/page/2", rejection="list_page")

    # 15. ordinary articles in other languages
    t, ps = EN["en_news"]
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(t)} | The Daily Example</title>'
            f'<meta property="og:title" content="{e(t)}"><meta property="article:published_time" content="2024-04-09T18:05:00-05:00"></head><body>'
            '<nav><a href="/">Home</a> <a href="/local">Local</a> <a href="/politics">Politics</a></nav>'
            f'<main><article><h1>{e(t)}</h1><p class="byline">By Sam Reed · April 9, 2024</p><div class="share-tools">Share on Facebook Share on X Email</div>'
            f'<div class="article-body">{paras_html(ps)}</div></article>'
            '<section class="related-stories"><h2>Related stories</h2><ul><li><a href="/1">Downtown bike lanes to expand next year</a></li><li><a href="/2">Mayor proposes new budget for libraries</a></li></ul></section></main>'
            '<footer>© 2024 The Daily Example. All rights reserved. <a href="/privacy">Privacy policy</a></footer></body></html>')
    write("english_news", page, ps, title=t, published_at="2024-04-09T18:05:00-05:00",
          boilerplate=["Share on Facebook", "Related stories", "bike lanes", "All rights reserved", "Privacy policy"], url="https://daily.example.com/local/rail-yard-park")
    t, ps = EN["en_blog"]
    comments = "".join(f'<div class="comment"><p class="author">{n}</p><p>{c}</p></div>' for n, c in (
        ("Alex", "Great write-up! I tried the same thing last year and gave up on the parser."), ("Priya", "Which book did you use for the VM design? Would love a link.")))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(t)} — notes</title>'
            f'<meta name="author" content="Jo Park"></head><body><div class="site-header"><a href="/">notes</a> <a href="/about">About</a></div>'
            f'<div class="post"><h1 class="post-title">{e(t)}</h1><time datetime="2023-10-02">October 2, 2023</time>'
            f'<div class="post-content">{paras_html(ps)}</div></div>'
            f'<div id="comments"><h3>2 comments</h3>{comments}<form><textarea></textarea><button>Post comment</button></form></div></body></html>')
    write("english_blog", page, ps, title=t, published_at=iso(2023, 10, 2),
          boilerplate=["Great write-up", "VM design", "2 comments", "Post comment"], url="https://notes.example.com/compiler-weekend")
    t, ps = EN["en_science"]
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(t)} - Science Today</title></head><body>'
            f'<div id="top"><a href="/">Science Today</a> <a href="/subscribe">Subscribe</a></div><div id="page"><div class="col-main"><h1>{e(t)}</h1>'
            f'<div class="meta">Published March 3, 2022</div><div class="text">{paras_html(ps)}</div></div>'
            '<div class="col-aside"><h3>Most read</h3><ol><li><a href="/a">The strange physics of spilled coffee</a></li><li><a href="/b">Why cats always land on their feet</a></li><li><a href="/c">New dinosaur species found in Argentina</a></li></ol></div></div>'
            '<div class="newsletter">Sign up for our newsletter and get the best stories every week.</div></body></html>')
    write("english_science", page, ps, title=t, published_at=iso(2022, 3, 3),
          boilerplate=["Most read", "spilled coffee", "Sign up for our newsletter", "Subscribe"], url="https://science.example.org/bees-count")
    t, ps = EN["fr_article"]
    page = (f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{e(t)} - Le Journal</title>'
            '<meta property="article:published_time" content="2023-02-15T07:00:00+01:00"></head><body>'
            '<nav class="menu"><a href="/">Accueil</a> <a href="/france">France</a></nav>'
            f'<article><h1>{e(t)}</h1><div class="chapo-texte">{paras_html(ps)}</div></article>'
            '<aside><h2>À lire aussi</h2><a href="/x">Les vélos électriques séduisent les seniors</a></aside>'
            '<footer>Tous droits réservés - Le Journal</footer></body></html>')
    write("french_article", page, ps, title=t, published_at="2023-02-15T07:00:00+01:00",
          boilerplate=["À lire aussi", "vélos électriques", "Tous droits réservés"], url="https://journal.example.fr/tramways")


if __name__ == "__main__":
    build()
    print(len(list(HERE.glob("*.html"))), "pages")
