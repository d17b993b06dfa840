"""The bundled demo aggregator: a juredian-like site served on 127.0.0.1.

Pages are generated deterministically from a seed, so the generator also knows the truth (title,
clean text, publication time) of every article; tests and benchmarks compare what sieve stored
against it. The chrome follows ../shared/FIELD-NOTES.md: a "聚热点 juredian" header, WeChat-style
bodies (`<section>`, `<p><span style>`, `&nbsp;`, `data-src` images), the author's calls-to-action,
a 搜索建议/热博 block with "(展开)" teasers, a disclaimer footer, list pages with relative times and
`首页 上一页 1 2 … 下一页 尾页` pagination. Some articles are republished under a second URL (exact
copies) or lightly edited (near copies), a few pages are GBK with only a `<meta charset>`, and
robots.txt disallows /private/.

demo/server.py serves it (`python -m demo --port 8765 --articles 60 [--latency-ms 5]`).
"""

from __future__ import annotations

import hashlib
import html
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8))
PER_LIST_PAGE = 10

# Original sentence templates; slots are filled per article so bodies differ like real articles do.
_SENTENCES: list[str] = [
    "{name}在{city}工作了{n}年,去年决定换一种活法。",
    "房租、通勤和生活节奏,是{name}和朋友们讨论最多的三件事。",
    "{city}的生活成本不算高,但{job}的机会确实少一些,需要自己去找。",
    "有人说,小城市的圈子更看重关系,外来的人要花{n}个月甚至更久才能融入。",
    "{name}回老家开了一家{shop},第一年就收回了成本。",
    "也有人回去{n}个月又回来了,因为在{city}找不到能聊到一起的人。",
    "城市没有好坏,只有适合不适合,{name}说这句话时很平静。",
    "选择之前,最好先去{city}待上{n}周,看看自己能不能适应。",
    "从大公司到小公司,{name}发现最大的变化不是薪水,而是做事的方式。",
    "大公司讲流程和协作,小公司讲结果和速度,{job}的感受尤其明显。",
    "很多{job}习惯了有人给资源、给方向,突然要自己从零开始,会很不适应。",
    "老板希望你独当一面,你希望老板给足支持,双方的预期经常对不上。",
    "在换工作之前先把预期谈清楚,{name}觉得这比涨薪{n}成更重要。",
    "一个好的管理者,会把复杂的事情讲简单,这是{name}在{city}学到的第一课。",
    "职场上最贵的东西是信任,{job}也不例外。",
    "今年{name}读了{n}本书,越读越觉得很多事情早有答案。",
    "读书最大的好处,是让人在做决定的时候多一个参照。",
    "{name}习惯每读完一本书就写几百字笔记,已经坚持了{n}年。",
    "有些书年轻时读不懂,过了十年再读,才发现句句都是经验。",
    "{city}的书店越来越少,但读书的人并没有变少,只是换了地方。",
    "创业的故事我们听得太多,可真正活过{n}年的只是很少一部分。",
    "大部分公司倒下,不是因为产品不好,而是现金流断了。",
    "做生意先想清楚谁会付钱,再想怎么把{thing}做好。",
    "传统行业其实很需要懂互联网的{job},只是他们不知道去哪里找。",
    "一个做{thing}的工厂老板跟我说,他最缺的不是钱,是能把货卖出去的人。",
    "差异化的行业加上差异化的能力,往往比在热门赛道里硬挤更有机会。",
    "不要被自己过去的职位限制住,能解决问题才是真本事。",
    "创业之前,{name}给自己留出了{n}个月的生活费。",
    "周末去{city}的菜市场转了一圈,发现{thing}比去年便宜了不少。",
    "早上跑步{n}分钟,一天的精神都会好很多。",
    "孩子上小学以后,{name}家里的作息全变了。",
    "做饭是最好的解压方式之一,切菜的时候什么都不用想。",
    "和父母视频的时候,他们最关心的永远是你吃得好不好。",
    "生活不需要太多仪式感,按时吃饭、好好睡觉就很好。",
    "{name}算过一笔账:在{city}每个月能省下{n}千块。",
    "后来{name}把{thing}的生意交给了表弟,自己去学了{job}的手艺。",
    "那家{shop}现在每天能接待{n}0多位客人,周末还要排队。",
    "{city}的冬天很冷,但{name}说心里是热的。",
]
_SLOTS: dict[str, list[str]] = {
    "name": ["小王", "阿杰", "老周", "李姐", "陈老师", "小林", "赵哥", "孙阿姨", "小吴", "郑总", "何同学", "冯师傅"],
    "city": ["北京", "杭州", "成都", "洛阳", "大理", "鹤岗", "泉州", "株洲", "绍兴", "南阳", "柳州", "赣州"],
    "job": ["产品经理", "程序员", "设计师", "运营", "老师", "会计", "销售", "厨师", "摄影师", "编辑"],
    "shop": ["咖啡店", "面馆", "书店", "花店", "烘焙坊", "修车铺", "民宿", "早餐店"],
    "thing": ["烘焙粉", "茶叶", "家具", "童装", "蔬菜", "文具", "五金件", "水果"],
}
_SHORT_PARAGRAPHS = ["P用没有。", "一切都有代价。", "想清楚再动手。", "共勉。", "就这样。"]
_TITLES = [
    "从{a}到{b}:一个{c}的选择",
    "{c}的第{n}封信:聊聊{a}",
    "为什么越来越多的人选择{a}",
    "关于{a},我想说几句真心话",
    "{a}这件事,没有标准答案",
    "在{b}待了三年,我学到的几件事",
]
_WORDS_A = ["回县城工作", "离开大厂", "读书这件小事", "做一个普通人", "换一种活法", "传统工厂", "慢下来"]
_WORDS_B = ["北京", "杭州", "四线城市", "一家小公司", "老家", "工厂车间"]
_WORDS_C = ["产品经理", "操盘手", "程序员", "老师", "创业者", "设计师"]
_ACCOUNTS = ["群响日记", "城市观察笔记", "读书会小组", "老王聊创业", "生活研究所", "职场进化论"]
_AUTHORS = ["toby", "王小明", "李静", "陈一", "周末", "阿哲"]
_HOT = [
    (
        "欠款不还会坐牢吗",
        "欠钱不还属民事行为,一般不会因此而构成刑事犯罪,也就不会坐牢。除非你确有能力归还而拒不执行法院的判决",
    ),
    (
        "中国教育,路在何方?",
        "想必大家都听过点石成金的故事吧,古人也说过,授人以鱼不如授人以渔。而放眼现在的教育乱像,谁还要渔了",
    ),
    (
        "年轻人为什么不爱存钱了",
        "最近一份调查显示,越来越多的年轻人选择把钱花在体验上,而不是存进银行。有专家认为这和收入预期有关",
    ),
    ("周末去哪儿玩比较好", "天气转凉,郊外的红叶正是好看的时候。不过热门景点人多,建议错峰出行,提前查好路线和停车位置"),
    ("考研还是直接工作", "每年这个时候,都有很多大四学生在纠结。考研能多几年准备,工作能早点积累经验,关键看自己的规划"),
]


def _fill(template: str, rng: random.Random) -> str:
    values = {slot: rng.choice(words) for slot, words in _SLOTS.items()}
    return template.format(n=rng.randint(2, 9), **values)


@dataclass(frozen=True, slots=True)
class DemoArticle:
    """What an article page holds, and what a perfect extractor would return for it."""

    number: int
    path: str
    title: str
    paragraphs: tuple[str, ...]
    account: str | None
    author: str | None
    published_label: str | None  # as printed on the page
    published_at: datetime | None  # truth for absolute dates
    relative_hours: int | None  # truth for "N小时前" (resolved against fetch time)
    template: str  # "wechat" | "portal" | "minimal"
    charset: str  # "utf-8" | "gbk"
    copy_of: int | None = None  # article number this page republishes (exact or near copy)

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


class DemoSite:
    """A deterministic juredian-like site with `n_articles` article pages and their list pages."""

    def __init__(self, n_articles: int = 60, *, seed: int = 7) -> None:
        if n_articles < 1:
            raise ValueError("n_articles must be at least 1")
        self.n_articles = n_articles
        self.seed = seed
        self.n_list_pages = (n_articles + PER_LIST_PAGE - 1) // PER_LIST_PAGE
        # per site, not functools.cache on the method: that would keep every DemoSite alive for the process
        self._articles: dict[int, DemoArticle] = {}

    # ---- truth -------------------------------------------------------------------------
    def article(self, number: int) -> DemoArticle:
        if not 1 <= number <= self.n_articles:
            raise KeyError(number)
        if number not in self._articles:
            self._articles[number] = self._make_article(number)
        return self._articles[number]

    def _make_article(self, number: int) -> DemoArticle:
        rng = random.Random(self.seed * 1_000_003 + number)
        copy_of = None
        # Every 12th article republishes an earlier one: exact copy on even turns, near copy on odd.
        if number > 12 and number % 12 == 0:
            copy_of = number - 11
        if copy_of is not None:
            original = self.article(copy_of)
            paragraphs = list(original.paragraphs)
            if (number // 12) % 2 == 1:  # near copy: one sentence edited, the rest identical
                paragraphs[-1] = paragraphs[-1].rstrip("。") + ",转载时略有删改。"
            title = original.title
            account, author = original.account, original.author
        else:
            theme = rng.choice(["城市", "职场", "读书", "创业", "生活"])
            templates = rng.sample(_SENTENCES, min(len(_SENTENCES), 24))
            paragraphs = []
            for _ in range(rng.randint(6, 10)):
                take, templates = templates[: rng.randint(1, 3)], templates[3:]
                if not take:
                    break
                paragraphs.append("".join(_fill(t, rng) for t in take))
            if rng.random() < 0.4:
                paragraphs.insert(rng.randint(2, len(paragraphs) - 1), rng.choice(_SHORT_PARAGRAPHS))
            # Real articles name their number and ask for comments; make each body unique.
            paragraphs.insert(0, f"这是第{number}期{theme}话题,我们从一个真实的故事说起。")
            paragraphs.append("以上,欢迎交流。")
            title = rng.choice(_TITLES).format(
                a=rng.choice(_WORDS_A), b=rng.choice(_WORDS_B), c=rng.choice(_WORDS_C), n=100 + number
            )
            account = rng.choice(_ACCOUNTS) if rng.random() < 0.7 else None
            author = rng.choice(_AUTHORS) if rng.random() < 0.6 else None
        kind = number % 4
        published_at = relative_hours = None
        label = None
        if kind == 1:
            published_at = datetime(2023, 5, 1, 8, 0, tzinfo=SHANGHAI) + timedelta(
                days=number % 28, minutes=7 * number % 600
            )
            label = published_at.strftime("%Y年%m月%d日 %H:%M")
        elif kind == 2:
            published_at = datetime(2022, 11, 3, tzinfo=SHANGHAI) + timedelta(days=number % 20)
            label = f"{published_at.year}年{published_at.month}月{published_at.day}日"
        elif kind == 3:
            relative_hours = 1 + number % 20
            label = f"{relative_hours}小时前"
        template = ("wechat", "portal", "minimal")[number % 3]
        charset = "gbk" if number % 10 == 7 else "utf-8"
        return DemoArticle(
            number=number,
            path=self.article_path(number),
            title=title,
            paragraphs=tuple(paragraphs),
            account=account,
            author=author,
            published_label=label,
            published_at=published_at,
            relative_hours=relative_hours,
            template=template,
            charset=charset,
            copy_of=copy_of,
        )

    def articles(self) -> list[DemoArticle]:
        return [self.article(n) for n in range(1, self.n_articles + 1)]

    @staticmethod
    def article_path(number: int) -> str:
        day = 20230501 + number % 28
        return f"/news/{day}/{number}.html"

    @staticmethod
    def list_path(page: int) -> str:
        return "/list/1.html" if page == 1 else f"/list/{page}.html"

    # ---- rendering ---------------------------------------------------------------------
    def render(self, path: str) -> tuple[int, bytes, str]:
        """Return (status, body, content type) for a path on this site."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path in ("/", "/index.html"):
            return 301, b"", "/list/1.html"
        if path == "/robots.txt":
            return 200, b"User-agent: *\nDisallow: /private/\nDisallow: /news/20230430/\n", "text/plain; charset=utf-8"
        if path.startswith("/list/") and path.endswith(".html"):
            try:
                page = int(path[len("/list/") : -len(".html")])
            except ValueError:
                return 404, b"not found", "text/plain"
            if 1 <= page <= self.n_list_pages:
                return 200, self._list_page(page).encode("utf-8"), "text/html; charset=utf-8"
        if path.startswith("/news/") and path.endswith(".html"):
            try:
                number = int(path.rsplit("/", 1)[1][: -len(".html")])
            except ValueError:
                return 404, b"not found", "text/plain"
            if 1 <= number <= self.n_articles and self.article_path(number) == path:
                article = self.article(number)
                html = self._article_page(article)
                if article.charset == "gbk":
                    # Only a <meta charset> names the encoding: the header stays silent, as on many CJK sites.
                    return 200, html.encode("gb18030"), "text/html"
                return 200, html.encode("utf-8"), "text/html; charset=utf-8"
        if path.startswith(("/private/", "/news/20230430/")):
            return 200, b"<html><body><p>private: robots.txt disallows this</p></body></html>", "text/html"
        return 404, b"<html><body>404</body></html>", "text/html; charset=utf-8"

    def _header(self) -> str:
        return (
            '<div class="header"><div class="logo"><a href="/">聚热点 juredian</a></div>'
            '<ul class="nav"><li><a href="/list/1.html">首页</a></li><li><a href="/list/1.html">热点</a></li>'
            '<li><a href="/list/1.html">社会</a></li><li><a href="/list/1.html">科技</a></li></ul></div>'
        )

    def _hot_block(self, rng: random.Random, number: int) -> str:
        items = []
        for title, teaser in rng.sample(_HOT, 2):
            items.append(
                f'<div class="hot-item"><span class="tag">热博</span>\n<p class="hot-title">\xa0{html.escape(title)}</p>'
                f'<p class="hot-teaser">{html.escape(teaser)}...(展开)</p></div>'
            )
        # Sidebar links carry dates in their URLs: a page without a date must not borrow one.
        related = [
            (n, self.article_path(n)) for n in ((number % self.n_articles) + 1, ((number + 4) % self.n_articles) + 1)
        ]
        links = "".join(f'<li><a href="{p}">相关文章 {n}</a></li>' for n, p in related)
        return (
            f'<div class="search-suggest"><h3>搜索建议:</h3>{"".join(items)}</div>'
            f'<div class="related"><h3>相关阅读</h3><ul>{links}</ul></div>'
        )

    def _footer(self) -> str:
        return (
            '<div class="footer"><p>免责声明:本站仅提供信息存储空间服务,文章版权归原作者所有,如有侵权请联系删除。</p>'
            "<p>Copyright © 2023 聚热点 juredian.com 版权所有</p></div>"
        )

    def _article_page(self, article: DemoArticle) -> str:
        rng = random.Random(self.seed * 7919 + article.number)
        title = html.escape(article.title)
        meta_charset = "gbk" if article.charset == "gbk" else "utf-8"
        info_bits = []
        if article.account:
            info_bits.append(f'<span class="account">来源:{html.escape(article.account)}</span>')
        if article.author:
            info_bits.append(f'<span class="author">作者:{html.escape(article.author)}</span>')
        if article.published_label:
            info_bits.append(f'<span class="time">{article.published_label}</span>')
        info = f'<div class="info">{" ".join(info_bits)}</div>' if info_bits else ""
        body = self._body(article, rng)
        breadcrumb = ""
        pager = ""
        if article.template == "portal":
            breadcrumb = '<div class="crumb">您当前的位置:<a href="/">首页</a> &gt; <a href="/list/1.html">热点</a> &gt; 正文</div>'
            prev_n = max(1, article.number - 1)
            next_n = min(self.n_articles, article.number + 1)
            pager = (
                f'<div class="pager"><p>上一篇:<a href="{self.article_path(prev_n)}">上一篇文章</a></p>'
                f'<p>下一篇:<a href="{self.article_path(next_n)}">下一篇文章</a></p></div>'
            )
        return (
            "<!DOCTYPE html>\n<html><head>"
            f'<meta charset="{meta_charset}">'
            f"<title>{title}-聚热点</title>"
            f'<meta name="keywords" content="聚热点,热点新闻,{title}">'
            f'<meta property="og:title" content="{title}">'
            "</head><body>"
            f"{self._header()}"
            f'<div class="main"><div class="left">{breadcrumb}'
            f'<div class="article"><h1 class="title">{title}</h1>{info}'
            f'<div class="content" id="content">{body}</div></div>{pager}</div>'
            f'<div class="right">{self._hot_block(rng, article.number)}</div></div>'
            f"{self._footer()}"
            "<script>var _hmt = _hmt || [];</script>"
            "</body></html>"
        )

    def _body(self, article: DemoArticle, rng: random.Random) -> str:
        parts = []
        if article.template == "wechat":
            parts.append('<p style="text-align:center"><span style="color:#576b95">点击上方蓝字关注我们</span></p>')
            for i, paragraph in enumerate(article.paragraphs):
                text = html.escape(paragraph).replace(" ", "&nbsp;", 1)
                parts.append(f'<section><p><span style="font-size:15px;letter-spacing:1px">{text}</span></p></section>')
                if i == 2:
                    digest = hashlib.md5(f"{article.number}".encode()).hexdigest()
                    parts.append(
                        f'<p><img data-src="https://mmbiz.qpic.cn/mmbiz_jpg/{digest}/640?wx_fmt=jpeg" '
                        'data-type="jpeg" style="width:100%"></p>'
                    )
            parts.append("<p><br></p><p>我唯一的个人微信</p><p>添加请备注来自公众号</p>")
            parts.append('<p><span style="color:#888">长按识别二维码关注,点个在看再走吧</span></p>')
        elif article.template == "portal":
            for paragraph in article.paragraphs:
                parts.append(f"<p>{html.escape(paragraph)}</p>")
            parts.append("<p>阅读原文</p>")
            parts.append('<div class="tags">推荐阅读:<a href="/list/1.html">更多热点</a></div>')
        else:  # minimal: text separated by <br>, no paragraph markup
            parts.append("<br>\n".join(html.escape(p) for p in article.paragraphs))
            parts.append("<br>\n我唯一的个人微信<br>\n添加请备注来自公众号")
        return "\n".join(parts)

    def _list_page(self, page: int) -> str:
        first = (page - 1) * PER_LIST_PAGE + 1
        last = min(self.n_articles, page * PER_LIST_PAGE)
        items = []
        for number in range(first, last + 1):
            article = self.article(number)
            teaser = html.escape(article.paragraphs[1][:40])
            hours = 1 + (number * 7) % 23
            items.append(
                f'<li class="item"><h3><a href="{article.path}?from=list&amp;utm_source=juredian">'
                f'{html.escape(article.title)}</a></h3><p>{teaser}...</p><span class="time">{hours}小时前</span></li>'
            )
        if page == 1:
            # an editors' preview that looks like an article, but robots.txt keeps crawlers off it
            items.append('<li class="item"><h3><a href="/news/20230430/0.html">内部预览</a></h3></li>')
        pager = ['<div class="pagination">', '<a href="/list/1.html">首页</a>']
        if page > 1:
            pager.append(f'<a href="{self.list_path(page - 1)}">上一页</a>')
        for p in range(max(1, page - 2), min(self.n_list_pages, page + 2) + 1):
            pager.append(f"<span>{p}</span>" if p == page else f'<a href="{self.list_path(p)}">{p}</a>')
        if page < self.n_list_pages:
            pager.append(f'<a href="{self.list_path(page + 1)}">下一页</a>')
        pager.append(f'<a href="{self.list_path(self.n_list_pages)}">尾页</a></div>')
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            "<title>今日新鲜事_今日新闻头条最新消息_热点头条新闻-聚热点网</title></head><body>"
            f'{self._header()}<div class="main"><ul class="list">{"".join(items)}</ul>{"".join(pager)}</div>'
            f"{self._footer()}</body></html>"
        )
