"""Bytes to text for Chinese pages, in the order FIELD-NOTES.md "Encodings" settled on.

1. a byte-order mark wins;
2. the charset in the Content-Type header;
3. a real `<meta charset>` / `<meta http-equiv=Content-Type>` (or an XML declaration) near the top;
   labels gb2312/gbk and their aliases become gb18030 (its superset: Python's gb2312 garbles 镕/喆);
4. each declared charset is tried *strictly*, so a lying header falls through;
5. then UTF-8 strictly; then charset-normalizer on the whole body; then gb18030 with replacement.

The cheap path (a declared charset that decodes) never runs charset-normalizer.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

SNIFF_BYTES = 4096   # WHATWG prescans 1 KB; Chinese portals put long <head> scripts before the meta

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),   # before UTF-16 LE: its BOM starts with FF FE too
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# WHATWG Encoding Standard label mapping, for the labels that matter here.
_LABEL_ALIASES = {
    **dict.fromkeys(
        ("gb2312", "gbk", "x-gbk", "gb_2312", "gb_2312-80", "chinese", "csgb2312", "iso-ir-58",
         "csiso58gb231280", "cp936", "ms936", "windows-936", "euc-cn", "hz-gb-2312", "gb18030"),
        "gb18030",
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5", "cp950"), "big5hkscs"),
    **dict.fromkeys(("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii", "iso8859-1", "l1", "windows-1252"), "cp1252"),
    **dict.fromkeys(("utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"), "utf-8"),
    # a page cannot declare UTF-16 in its own (ASCII-compatible) bytes: WHATWG reads it as UTF-8
    **dict.fromkeys(("utf-16", "utf-16le", "utf-16be", "utf-32"), "utf-8"),
    **dict.fromkeys(("shift_jis", "sjis", "x-sjis", "ms_kanji", "windows-31j"), "cp932"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "windows-949"), "cp949"),
}
# What charset-normalizer tends to answer for short GBK text (FIELD-NOTES): check gb18030 first.
_CJK_CONFUSABLE = {"big5", "big5hkscs", "cp950", "cp949", "euc_kr", "johab", "shift_jis", "cp932", "euc_jp",
                   "iso2022_jp", "iso2022_kr", "euc_jis_2004", "shift_jis_2004", "shift_jisx0213"}

_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:+-]+)""", re.I)
_META_TAG = re.compile(rb"<meta\b[^>]*>", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9_.:+-]+)["']""", re.I)
_HIDDEN = re.compile(rb"<!--.*?(?:-->|$)|<script\b.*?(?:</script\s*>|$)", re.I | re.S)


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str        # Python codec name actually used
    replaced: bool       # True when undecodable bytes became U+FFFD


def normalize_label(label: str | None) -> str | None:
    """A charset label as a Python codec name (WHATWG aliases applied), or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    mapped = _LABEL_ALIASES.get(label)
    if mapped:
        return mapped
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _LABEL_ALIASES.get(name, name)


def header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _CHARSET_PARAM.search(content_type.encode("latin-1", "replace"))
    return match.group(1).decode("ascii") if match else None


def meta_charset(head: bytes) -> str | None:
    """The charset a real <meta> (or the XML declaration) declares in `head`; comments and scripts ignored."""
    xml = _XML_DECL.match(head)
    if xml:
        return xml.group(1).decode("ascii")
    visible = _HIDDEN.sub(b"", head) if (b"<!--" in head or b"<script" in head.lower()) else head
    for tag in _META_TAG.finditer(visible):
        raw = tag.group(0)
        lowered = raw.lower()
        if b"charset" not in lowered:
            continue
        if b"http-equiv" in lowered and b"content-type" not in lowered:
            continue
        match = _CHARSET_PARAM.search(raw)
        if match:
            return match.group(1).decode("ascii")
    return None


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(body: bytes, content_type: str | None = None) -> DecodedText:
    """Decode a page; never raises. See the module docstring for the order."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            rest = body[len(bom):]
            text = _strict(rest, codec)
            if text is not None:
                return DecodedText(text, codec, False)
            return DecodedText(rest.decode(codec, "replace"), codec, True)

    tried: set[str] = set()
    for label in (header_charset(content_type), meta_charset(body[:SNIFF_BYTES])):
        codec = normalize_label(label)
        if codec is None or codec in tried:
            continue
        tried.add(codec)
        text = _strict(body, codec)
        if text is not None:
            return DecodedText(text, codec, False)

    if "utf-8" not in tried:
        text = _strict(body, "utf-8")
        if text is not None:
            return DecodedText(text, "utf-8", False)

    guessed = _normalizer_guess(body)
    if guessed is not None:
        if guessed in _CJK_CONFUSABLE:
            text = _strict(body, "gb18030")
            if text is not None:
                return DecodedText(text, "gb18030", False)
        text = _strict(body, guessed)
        if text is not None:
            return DecodedText(text, guessed, False)

    text = body.decode("gb18030", "replace")
    return DecodedText(text, "gb18030", "\ufffd" in text)


def _normalizer_guess(body: bytes) -> str | None:
    from charset_normalizer import from_bytes   # imported lazily: it is only needed on undeclared, non-UTF-8 pages

    best = from_bytes(body).best()
    if best is None:
        return None
    return normalize_label(best.encoding) or best.encoding
