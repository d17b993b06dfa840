"""Charset decoding: BOM, header, meta, gb18030 for gbk/gb2312, lying headers, and the same through HTTP."""
from __future__ import annotations

import asyncio

import pytest

from crawler import CrawlSettings, Fetcher, FetchResult, decode_html
from crawler.decode import meta_charset, normalize_label
from tests.faultserver import FaultServer

# 镕 and 喆 are outside GB2312: Python's gb2312 codec cannot decode them, gb18030 (what WHATWG uses) can.
TEXT = "朱镕基 陶喆 今日新鲜事,热点头条新闻。聚热点网为你整理了最新的热点资讯,欢迎交流。"
BODY = f"<html><head><title>聚热点</title></head><body><p>{TEXT}</p><p>{TEXT}</p></body></html>"


def gbk(html: str) -> bytes:
    return html.encode("gbk")


def with_meta(meta: str) -> str:
    return BODY.replace("<head>", f"<head>{meta}")


def test_declared_gb2312_decodes_characters_outside_gb2312() -> None:
    raw = gbk(BODY)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("gb2312")
    d = decode_html(raw, "text/html; charset=GB2312")
    assert d.encoding == "gb18030" and not d.replaced
    assert "朱镕基 陶喆" in d.text


def test_utf8_header() -> None:
    d = decode_html(BODY.encode("utf-8"), "text/html; charset=utf-8")
    assert d.text == BODY and d.encoding == "utf-8" and not d.replaced


@pytest.mark.parametrize(
    "meta",
    [
        '<meta charset="gbk">',
        "<meta charset=gb2312>",
        '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">',
        "<META HTTP-EQUIV='content-type' CONTENT='text/html;charset=GBK'/>",
    ],
)
def test_meta_only(meta: str) -> None:
    d = decode_html(gbk(with_meta(meta)), "text/html")
    assert d.encoding == "gb18030" and TEXT in d.text and not d.replaced


def test_meta_in_a_comment_or_script_is_not_real() -> None:
    head = b'<!-- <meta charset="big5"> --><script>var s = \'<meta charset="big5">\';</script><meta charset="gbk">'
    assert meta_charset(head) == "gbk"
    assert meta_charset(b"<p>charset=big5 in text</p>") is None


def test_lying_utf8_header_falls_through_to_meta() -> None:
    d = decode_html(gbk(with_meta('<meta charset="gbk">')), "text/html; charset=utf-8")
    assert d.encoding == "gb18030" and TEXT in d.text and not d.replaced


def test_lying_utf8_header_without_meta_still_decodes_chinese() -> None:
    d = decode_html(gbk(BODY), "text/html; charset=utf-8")
    assert TEXT in d.text and not d.replaced
    assert d.encoding == "gb18030"


def test_undeclared_utf8_and_undeclared_gbk() -> None:
    assert decode_html(BODY.encode("utf-8"), None).encoding == "utf-8"
    d = decode_html(gbk(BODY), None)
    assert TEXT in d.text and d.encoding == "gb18030"


def test_bom_wins_over_header_and_is_stripped() -> None:
    d = decode_html(b"\xef\xbb\xbf" + BODY.encode("utf-8"), "text/html; charset=gbk")
    assert d.text == BODY and d.encoding == "utf-8"
    d16 = decode_html(b"\xff\xfe" + BODY.encode("utf-16-le"), None)
    assert d16.text == BODY and d16.encoding == "utf-16-le"


def test_garbage_is_decoded_with_replacement_and_flagged() -> None:
    raw = gbk(BODY)[:-40] + b"\xff\xfe\xfd\x80\x81" * 3 + b"</p></body></html>"
    d = decode_html(raw, "text/html; charset=utf-8")
    assert "朱镕基 陶喆 今日新鲜事" in d.text     # the good part survives
    assert d.replaced and "\ufffd" in d.text


def test_unknown_label_is_ignored() -> None:
    d = decode_html(BODY.encode("utf-8"), "text/html; charset=x-made-up")
    assert d.encoding == "utf-8" and d.text == BODY


def test_label_aliases() -> None:
    assert {normalize_label(x) for x in ("GB2312", "gbk", "x-gbk", "cp936", "GB18030")} == {"gb18030"}
    assert normalize_label("ISO-8859-1") == "cp1252"
    assert normalize_label("nonsense") is None


def test_decoding_through_http(fault_server: FaultServer) -> None:
    cases = {
        "/header.html": (gbk(BODY), "text/html; charset=gbk"),
        "/meta.html": (gbk(with_meta('<meta charset="gb2312">')), "text/html"),
        "/liar.html": (gbk(with_meta('<meta charset="gbk">')), "text/html; charset=utf-8"),
        "/bom.html": (b"\xef\xbb\xbf" + BODY.encode("utf-8"), "text/html"),
        "/plain.html": (BODY.encode("utf-8"), "text/html; charset=UTF-8"),
    }
    for path, (body, ctype) in cases.items():
        fault_server.page(path, body, ctype)

    async def go() -> list[FetchResult]:
        async with Fetcher(CrawlSettings(delay_seconds=0, respect_robots=False), None) as f:
            return list(await asyncio.gather(*(f.fetch(fault_server.url(p)) for p in cases)))

    results = asyncio.run(go())
    for r, (path, (body, _)) in zip(results, cases.items(), strict=True):
        assert r.ok, (path, r.error)
        assert r.body == body and r.nbytes == len(body)
        assert TEXT in (r.text or ""), path
        assert not r.text.startswith("\ufeff")
        assert not r.replaced
    assert [r.encoding for r in results] == ["gb18030", "gb18030", "gb18030", "utf-8", "utf-8"]


# ---- one bad byte, mojibake, garbage (issues 11 and 13) -----------------------------------------

PROSE = "城东的老菜市场完成了改造,摊位更宽敞了,顾客可以在出口处免费复秤。" * 20
PAGE = f"<html><head><title>菜市场</title></head><body><p>{PROSE}</p></body></html>"


@pytest.mark.parametrize("damage", [
    lambda raw: raw.replace(b"<body>", b"<body>\xff", 1),                  # a stray 0xff
    lambda raw: raw[: raw.rindex("。".encode()) + 1],                        # a cut last character
    lambda raw: raw.replace(b"</title>", b"\x80</title>"),                 # a 0x80 in the title
])
def test_utf8_with_a_bad_byte_stays_utf8_and_is_flagged(damage) -> None:
    raw = damage(PAGE.encode("utf-8"))
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    d = decode_html(raw, "text/html")
    assert d.encoding == "utf-8" and d.replaced
    assert PROSE[:40] in d.text                     # not gb18030 mojibake (杩欐槸涓…)


def test_undeclared_gbk_with_few_hanzi_is_not_taken_for_broken_utf8() -> None:
    raw = "<html><body><p>Prices rose again this week, say 新闻 reports.</p></body></html>".encode("gbk")
    d = decode_html(raw, None)
    assert "新闻" in d.text and not d.replaced


def test_choice_between_encodings_is_by_replacements_not_first_success() -> None:
    # declared utf-8 (lying), body GBK with one broken pair: gb18030 needs one replacement, utf-8 hundreds
    raw = PAGE.encode("gbk").replace("顾客".encode("gbk"), b"\x81\x20", 1)
    d = decode_html(raw, "text/html; charset=utf-8")
    assert d.encoding == "gb18030" and d.replaced
    assert d.text.count("\ufffd") <= 2 and "老菜市场完成了改造" in d.text


def _as_browser_1252(raw: bytes) -> str:
    """bytes read the way a browser reads windows-1252 (undefined bytes kept as C1 controls)."""
    return "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in raw)


@pytest.mark.parametrize("read_as", [_as_browser_1252, lambda raw: raw.decode("latin-1"),
                                     lambda raw: raw.decode("iso8859-15")])
def test_gbk_stored_as_latin1_mojibake_is_repaired(read_as) -> None:
    raw = read_as(PAGE.encode("gbk")).encode("utf-8")
    d = decode_html(raw, "text/html; charset=utf-8")
    assert d.repaired and d.text == PAGE
    assert d.encoding.startswith("utf-8>") and d.encoding.endswith(">gb18030")


def test_double_mojibake_is_repaired_twice() -> None:
    once = PAGE.encode("utf-8").decode("latin-1")          # UTF-8 read as Latin-1 ...
    twice = once.encode("utf-8").decode("latin-1")         # ... and again
    d = decode_html(twice.encode("utf-8"), None)
    assert d.repaired and PROSE[:40] in d.text
    assert d.text == PAGE and d.encoding.endswith(">utf-8>cp1252>utf-8")


def test_big5_mojibake_is_repaired() -> None:
    page = "<html><body><p>" + "新北市衛生局昨邀餐廳主廚提供年菜食譜，讓民眾吃得營養又健康。" * 10 + "</p></body></html>"
    d = decode_html(page.encode("big5").decode("latin-1").encode("utf-8"), None)
    assert d.repaired and "新北市衛生局昨邀餐廳主廚" in d.text


def test_real_latin1_text_is_left_alone() -> None:
    page = "<html><body><p>" + "Café au lait, crème brûlée, déjà vu: à la française, naïve façade. " * 20 + "</p></body></html>"
    d = decode_html(page.encode("utf-8"), None)
    assert d.text == page and not d.repaired


def test_gb18030_beats_a_non_cjk_single_byte_guess(monkeypatch) -> None:
    import crawler.decode as decode

    monkeypatch.setattr(decode, "_normalizer_guess", lambda body: "cp1251")   # what it said of one real page
    d = decode_html(PAGE.encode("gbk"), None)
    assert d.encoding == "gb18030" and PROSE[:40] in d.text


def test_random_bytes_are_undecodable_and_text_is_not() -> None:
    import random

    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(20_000))
    assert decode_html(noise, "text/html").undecodable
    assert decode_html(b"\x00\x01\x02\x03" * 500, "text/html").undecodable
    assert decode_html(PAGE.encode("utf-8"), None).undecodable is None
    assert decode_html(gbk(BODY), None).undecodable is None


def test_binary_sniffing() -> None:
    from crawler.decode import looks_binary

    assert looks_binary(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    assert looks_binary(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert not looks_binary(PAGE.encode("utf-8")) and not looks_binary(gbk(BODY))
