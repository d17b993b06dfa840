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
    for r, (path, (body, _)) in zip(results, cases.items()):
        assert r.ok, (path, r.error)
        assert r.body == body and r.nbytes == len(body)
        assert TEXT in (r.text or ""), path
        assert not r.text.startswith("\ufeff")
        assert not r.replaced
    assert [r.encoding for r in results] == ["gb18030", "gb18030", "gb18030", "utf-8", "utf-8"]
