"""Golden pages for the patterns issue 11 found on real portal pages, one page per pattern.

Written fresh for this project (no page or text from the public evaluation sets): each page is a
faithful fixture of the *shape* that fooled the extractor (where the article sits, what surrounds
it, what it is made of), with made-up text. Run by hand (`python tests/golden/_make_patterns.py`);
the generated `pattern_*` files are committed and are part of the golden corpus.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
e = html.escape

ART = [
    "市交通委员会昨天发布消息,今年春节期间地铁各线路将延长运营时间,末班车最晚推迟到凌晨一点。",
    "据介绍,除夕当晚一号线和二号线将通宵运行,其他线路的发车间隔也会缩短到五分钟以内。",
    "交通部门提醒,节日期间客流集中,乘客出行前可以通过官方应用查询实时拥挤程度,错峰出行。",
    "此外,机场快线从下周起加密班次,每十分钟一班,方便旅客往返市区和机场。",
]
SHORT = ["国家统计局今天公布,十一月全国规模以上工业增加值同比增长百分之五点四,比上月加快零点二个百分点。"]
HEADLINES = ["老旧小区加装电梯进入快车道", "冬季供暖投诉热线今起开通", "本周末将迎来今冬首场降雪",
             "新能源公交线路再增十条", "社区食堂试点扩大到五个区", "夜间经济示范街区名单公布",
             "中小学寒假时间确定", "城市绿道总长突破一千公里"]
SUMMARIES = ["记者从住建部门获悉,今年全市已有三百多个老旧小区完成电梯加装,居民出行更加方便。",
             "供暖季开始后,热力公司开通二十四小时热线,居民遇到室温不达标可以随时反映。",
             "气象台预计,受冷空气影响,本周末北部山区将出现降雪,市区气温最低降至零下五度。",
             "公交集团表示,新开通的线路全部使用纯电动车辆,覆盖多个新建居住区和产业园区。",
             "试点社区食堂提供老年人优惠套餐,每份午餐价格不超过十五元,受到居民欢迎。"]


def head(title: str, charset: str = "utf-8") -> str:
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="{charset}"><title>{e(title)}_城市新闻网</title>'
            '<script>var _hmt = _hmt || [];</script></head>')


def nav() -> str:
    return ('<div class="topbar"><a href="/">首页</a> <a href="/news">新闻</a> <a href="/city">城市</a> '
            '<a href="/finance">财经</a></div>')


def ranking(count: int = 8) -> str:
    rows = "".join(f'<li><span class="num">{i + 1}</span><a href="/r/{i}.html">{e(t)}</a><em>{90000 - i * 7000}</em></li>'
                   for i, t in enumerate(HEADLINES[:count]))
    return f'<div class="list-box"><h3>48小时点击排行</h3><ul>{rows}</ul></div>'


def paragraphs(lines: list[str]) -> str:
    return "".join(f"<p>{e(line)}</p>" for line in lines)


def write(name: str, page: str, text: list[str] | None, *, title: str, boilerplate: list[str],
          published_at: str | None = None, encoding: str = "utf-8", raw: bytes | None = None,
          rejection: str | None = None) -> None:
    (HERE / f"{name}.html").write_bytes(raw if raw is not None else page.encode(encoding))
    if text is not None:
        (HERE / f"{name}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    spec = {"url": f"https://news.example.cn/a/{name}.html", "title": title, "published_at": published_at,
            "source_rules": None, "boilerplate": boilerplate}
    if rejection:
        spec["rejection"] = rejection
    (HERE / f"{name}.json").write_text(json.dumps(spec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def build() -> None:
    for old in HERE.glob("pattern_*"):
        old.unlink()
    title = "春节期间地铁延长运营时间"

    # 1. tail overrun: the article container is followed, inside the same column, by a click
    #    ranking, a related list, a share/print bar, editor and tag lines, an app promotion and legal lines
    column = (f'<div class="main-col"><h1>{title}</h1><div class="article" id="artical_real">{paragraphs(ART)}</div>'
              '<div class="tools">字号:<a href="#">T</a>|<a href="#">T</a> <a href="#">打印</a> <a href="#">转发</a></div>'
              '<p>[责任编辑:王明]</p><p>标签:<a href="/t/1">地铁</a> <a href="/t/2">春节</a></p>'
              + ranking()
              + '<div class="box2"><h3>网罗天下</h3>' + paragraphs([f"{h}" for h in HEADLINES[4:8]]) + "</div>"
              '<p>下载城市新闻网手机客户端,随时随地看新闻</p>'
              '<p>关注我们的Facebook專頁,每日推送本地要闻</p>'
              '<p>本网站所刊载信息,不代表本站观点。未经书面授权不得转载。</p>'
              '<p>京ICP证030173号 京公网安备11000002000001号</p></div>')
    page = head(title) + f"<body>{nav()}<div class='wrap'>{column}</div></body></html>"
    write("pattern_tail_overrun", page, ART, title=title,
          boilerplate=["48小时点击排行", HEADLINES[0], HEADLINES[5], "字号", "责任编辑", "手机客户端", "Facebook", "ICP", "不代表本站观点"])

    # 2. a real article with a few "headline【source】date" link lines under it: an article, not a list page
    under = "".join(f'<p><a href="/n/{i}.html">{e(h)}</a>【城市晚报】2023-01-1{i}</p>' for i, h in enumerate(HEADLINES[:4]))
    page = head(title) + f"<body>{nav()}<div class='content'><h1>{title}</h1>{paragraphs(ART)}<h4>相关新闻</h4>{under}</div></body></html>"
    write("pattern_headlines_under_article", page, ART, title=title, boilerplate=["相关新闻", "【城市晚报】", HEADLINES[1]])

    # 3. a punctuated disclaimer longer than the (short) article must not win the density choice
    t3 = "十一月工业增加值同比增长5.4%"
    notice = ("免责声明:本文仅代表作者个人观点,与本网无关。其原创性以及文中陈述文字和内容未经本站证实,"
              "对本文以及其中全部或者部分内容、文字的真实性、完整性、及时性本站不作任何保证或承诺,请读者仅作参考,并请自行核实相关内容。")
    page = (head(t3) + f"<body>{nav()}<div class='left'><h1>{e(t3)}</h1><div class='text'>{paragraphs(SHORT)}</div>"
            f"<div class='clear'></div><p style='padding:30px'>{e(notice)}</p></div></body></html>")
    write("pattern_notice_beats_short_article", page, SHORT, title=t3, boilerplate=["免责声明", "不作任何保证"])

    # 4. a <select> of two hundred places is the densest "text" on the page; form controls never count
    options = "".join(f"<option value='{i}'>第{i}区县政务服务中心、办事指南、便民热线、办公地址。</option>" for i in range(200))
    page = (head(title) + f"<body>{nav()}<div class='jump'><select onchange='go(this)'>{options}</select></div>"
            f"<div class='article_box'><h1>{title}</h1>{paragraphs(ART)}</div></body></html>")
    write("pattern_select_dropdown", page, ART, title=title, boilerplate=["政务服务中心", "办事指南"])

    # 5. the article inside an unclosed <a>: the parser re-opens it in every paragraph
    page = (head(title) + f"<body>{nav()}<div class='c'><h1>{title}</h1><a href='/author/12'>本报记者"
            f"{paragraphs(ART)}</div><div class='side'>{ranking(5)}</div></body></html>")
    write("pattern_unclosed_anchor", page, ART, title=title, boilerplate=["48小时点击排行"])   # the byline link goes

    # 6. a comment thread longer than the article, punctuated, right under it
    comments = "".join(f"<li><div class='who'>网友{i}号 2023-01-1{i % 9} 10:3{i % 9}</div><p>{e(s)}这个消息太及时了,希望以后每个节日都这样安排,点赞支持。</p></li>"
                       for i, s in enumerate(SUMMARIES * 2))
    page = (head(title) + f"<body>{nav()}<div class='main'><h1>{title}</h1><div class='txt'>{paragraphs(ART)}</div>"
            f"<div class='comment-list'><h3>网友评论</h3><ul>{comments}</ul></div></div></body></html>")
    write("pattern_comment_thread", page, ART, title=title, boilerplate=["网友评论", "网友1号", "点赞支持"])

    # 7. a "most popular" list of headline links with summaries beats a short article
    # (eight headlines, five summaries: the list stops at the shorter, as a real one would)
    items = "".join(f"<li><div class='t'><a href='/p/{i}.html'>{e(h)}</a><cite>城市晚报 - 3小时前</cite></div>"
                    f"<div class='preview'><p>{e(s)}</p></div></li>" for i, (h, s) in enumerate(zip(HEADLINES, SUMMARIES, strict=False)))
    page = (head(t3) + f"<body>{nav()}<div class='top-stories'><h3>最热门新闻</h3><ul class='list'>{items}</ul></div>"
            f"<div class='art-hd'><h1>{e(t3)}</h1></div><div class='art-bd'><div class='bd'>{paragraphs(SHORT)}</div></div></body></html>")
    write("pattern_teaser_list_beats_short_article", page, SHORT, title=t3, boilerplate=["最热门新闻", SUMMARIES[0][:20], HEADLINES[2]])

    # 8. GBK text stored as Latin-9 mojibake in a UTF-8 file (the page declares gbk; the bytes are UTF-8)
    page = head(title, charset="gbk") + f"<body>{nav()}<div class='content'><h1>{title}</h1>{paragraphs(ART)}</div></body></html>"
    mojibake = page.encode("gbk").decode("iso8859-15").encode("utf-8")
    write("pattern_mojibake_latin9", page, ART, title=title, raw=mojibake, boilerplate=[])

    # 9. a summary line at the head that the body repeats in full
    lead = ART[0].rstrip("。") + "……"
    page = (head(title) + f"<body>{nav()}<div class='content'><h1>{title}</h1><div class='summary'>{e(lead)}</div>"
            f"{paragraphs(ART)}</div></body></html>")
    write("pattern_teaser_repeated", page, ART, title=title, boilerplate=[lead])

    # 10. head meta lines go to metadata (the date is read: no time, more fields after it), WeChat end markers go
    info = "时间:2023年05月12日&nbsp;&nbsp;来源:城市晚报&nbsp;&nbsp;作者:周明&nbsp;&nbsp;浏览:1024次"
    page = (head(title) + f"<body>{nav()}<div class='content'><h1>{title}</h1><p>{info}</p>{paragraphs(ART)}"
            "<p>- END -</p><p>▼</p><p>点个在看,分享给更多朋友</p></div></body></html>")
    write("pattern_meta_lines_and_end_marker", page, ART, title=title, published_at="2023-05-12T00:00:00+08:00",
          boilerplate=["时间:2023", "来源:城市晚报", "- END -", "▼", "点个在看"])

    # 11. a related box embedded inside the article: its links go, the label goes, both halves stay
    box = ("<div class='embed'><p>推荐阅读</p><ul>" + "".join(f"<li><a href='/e/{i}.html'>{e(h)}</a></li>" for i, h in enumerate(HEADLINES[:5]))
           + "</ul></div>")
    page = (head(title) + f"<body>{nav()}<div class='content'><h1>{title}</h1>{paragraphs(ART[:2])}{box}"
            f"<div class='more'>{paragraphs(ART[2:])}</div></div>{ranking(6)}</body></html>")
    write("pattern_embedded_related_box", page, ART, title=title, boilerplate=["推荐阅读", HEADLINES[3]])

    # 12. comment-posting rules beside a comment form, longer than the article
    rules = ("新闻讨论规范<br>【1】留言限140字以内,留言将于发送72小时后由系统自动删除。<br>【2】与本报报道内容无关、涉及人身攻击、"
             "张贴广告的留言一律删除。<br>【3】网友应谨慎发言,遵守相关法律规定,违者自负法律责任。<br>"
             "【4】参与讨论的网友,视为同意管理者可随时对论坛内所有内容进行删除,或因应版面调整移动论坛位置。<br>"
             "【5】敬请网友遵守以上原则,不同意者,请勿在此发表言论。")
    page = (head(t3) + f"<body>{nav()}<article><h1>{e(t3)}</h1><div class='box'>{paragraphs(SHORT)}</div></article>"
            f"<section class='chat'><form><textarea name='t'></textarea><div class='send'><p><font>{rules}</font></p>"
            "<button>发布</button></div></form></section></body></html>")
    write("pattern_comment_rules", page, SHORT, title=t3, boilerplate=["新闻讨论规范", "自负法律责任", "请勿在此发表言论"])

    # 13. toolbar lines around the article (font size, share tools, print)
    page = (head(title) + f"<body>{nav()}<div class='content'><h1>{title}</h1><div class='bar'>【字号 大 中 小】 <a href='#'>打印本页</a> <a href='#'>关闭窗口</a></div>"
            f"{paragraphs(ART)}<div class='share'>分享工具</div><p>分享到:</p></div></body></html>")
    write("pattern_toolbar_lines", page, ART, title=title, boilerplate=["字号", "打印本页", "分享工具"])

    # 14. an article whose sentences carry inline links (names, terms: more link text than a menu has)
    #     beside a sidebar sign-up form with a paragraph of its own: the article is the block
    linked = [
        '<a href="/org/jtw">市交通委员会</a>昨天发布消息,今年<a href="/tag/cj">春节期间</a><a href="/tag/dt">地铁各线路</a>将延长运营时间,末班车最晚推迟到凌晨一点。',
        '据介绍,<a href="/day/cx">除夕当晚</a><a href="/line/1">一号线</a>和<a href="/line/2">二号线</a>将通宵运行,其他线路的发车间隔也会缩短到五分钟以内。',
        '<a href="/org/jtbm">交通部门</a>提醒,节日期间客流集中,乘客出行前可以通过<a href="/app">官方应用</a>查询<a href="/live">实时拥挤程度</a>,错峰出行。',
        '此外,<a href="/line/jc">机场快线</a>从下周起加密班次,每十分钟一班,方便旅客往返<a href="/city">市区</a>和<a href="/airport">机场</a>。',
    ]
    signup = ("订阅城市新闻网每日早报,我们会把当天最重要的本地新闻、天气和交通提醒发送到您的邮箱。"
              "我们会统计邮件的打开次数和点击情况,您可以随时在邮件底部点击链接退订,每周最多发送七封。")
    page = (head(title) + f"<body>{nav()}<div class='wrap'><div class='main'><h1>{title}</h1><div class='entry'>"
            + "".join(f"<p>{line}</p>" for line in linked)
            + "</div></div><div class='aside'><div class='aside-inner'><section class='widget'><div class='form-wrapper'>"
            f"<form id='f8' method='post'><p>{e(signup)}</p><label>邮箱</label><input name='email'><button>订阅</button>"
            "</form></div></section></div></div></div></body></html>")
    write("pattern_inline_links_beside_signup_form", page, ART, title=title, boilerplate=["订阅城市新闻网", "点击链接退订"])

    # 15. an (English) article body in chunks between ad rows, each chunk a grid with its ad rail:
    #     trafilatura reads the first chunk and stops; the rest of the block's prose follows, ad labels go
    t15 = "Metro lines to run late over the holiday"
    en = ["The city's transport committee said on Tuesday that every metro line would run later over the "
          "holiday, with the last trains leaving well after midnight on the busiest evenings.",
          "On New Year's Eve, lines one and two will run through the night, and trains on the other lines "
          "will come every five minutes at most, the committee said in a statement.",
          "Officials urged riders to check how crowded stations are in the official app before they travel, "
          "and to avoid the hours just before and after the fireworks if they can.",
          "The airport express will also run more often from next week, with a train every ten minutes, "
          "to help travellers get between the city centre and the terminals.",
          "Rail operators plan to add temporary trains for students and workers going home, about eighty "
          "extra pairs a day at the peak, and the first tickets go on sale on Friday.",
          "Several airlines have cut fares on routes out of the city by about a third, though the cheapest "
          "seats are limited and must be booked at least two weeks ahead.",
          "Forecasters expect rain and snow across the region before the holiday, so drivers were told to "
          "check road conditions before setting off and to leave more time for their journeys.",
          "The committee said it would adjust services in real time as crowds build, and that extra staff "
          "would be on hand at the largest interchange stations throughout the week."]

    def chunk(lines: list[str]) -> str:
        return ("<div class='grid grid-items-2 grid-layout--adrail'><div class='grid--item body body__container "
                f"article__body grid-layout__content'>{paragraphs(lines)}</div><div class='grid--item grid-layout__aside'>"
                "<div class='sticky-box'><div class='sticky-box__primary'><div class='ad ad--rail'><div class='ad__slot'>"
                "</div></div></div></div></div></div>")
    ad_row = ("<div class='row full-bleed-ad'><div class='ad ad--mid-content'><span class='ad-label'>Advertisement</span>"
              "<div class='ad__slot'></div></div></div>")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(t15)} | City News</title></head>'
            f"<body><div class='nav'><a href='/'>Home</a> <a href='/news'>News</a> <a href='/city'>City</a></div>"
            f"<div class='article'><h1>{e(t15)}</h1><div class='article__chunks'>" + chunk(en[:3]) + ad_row
            + chunk(en[3:6]) + ad_row + chunk(en[6:]) + "</div></div></body></html>")
    write("pattern_body_in_chunks_between_ads", page, en, title=t15, boilerplate=["Advertisement"])

if __name__ == "__main__":
    build()
