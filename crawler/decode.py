"""Bytes to text for Chinese pages: the one decoder (crawler, `sieve extract`, `sieve eval`, tests).

1. a byte-order mark wins;
2. each declared charset (Content-Type header, then a real `<meta charset>` / `<meta http-equiv>` or
   an XML declaration near the top), tried *strictly*, so a lying header falls through; labels
   gb2312/gbk and their aliases become gb18030 (its superset: Python's gb2312 garbles 镕/喆);
3. UTF-8 strictly;
4. nothing decodes cleanly: a body that is valid UTF-8 but for a few bytes (a stray 0xff, a cut
   last character) is UTF-8 with replacement characters, never gb18030 mojibake (`杩欐槸涓…`);
   otherwise the candidates (declared, charset-normalizer's guess, gb18030, UTF-8) are compared by
   how many replacements each needs, and gb18030 beats a non-CJK single-byte guess (a Cyrillic
   code page for an undeclared GBK page) when it needs (almost) none;
5. mojibake repair: text that is GBK/Big5/UTF-8 bytes read as Latin-1/cp1252/Latin-9 (a portal that
   stored it so, sometimes twice) is turned back, again while it improves;
6. a result that is mostly replacement or control characters, or has no letters at all, is
   flagged `undecodable` (outcomes kind): it must not become an article.

The cheap path (a declared or UTF-8 body that decodes, with no Latin-1 runs) costs one decode and
one regex scan; charset-normalizer runs only on undeclared, non-UTF-8 bodies.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = [
    "DecodedText",
    "decode_html",
    "normalize_label",
    "header_charset",
    "meta_charset",
    "undecodable_reason",
    "looks_binary",
    "repair_mojibake",
]

SNIFF_BYTES = 4096  # WHATWG prescans 1 KB; Chinese portals put long <head> scripts before the meta

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts with FF FE too
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# WHATWG Encoding Standard label mapping, for the labels that matter here.
_LABEL_ALIASES = {
    **dict.fromkeys(
        (
            "gb2312",
            "gbk",
            "x-gbk",
            "gb_2312",
            "gb_2312-80",
            "chinese",
            "csgb2312",
            "iso-ir-58",
            "csiso58gb231280",
            "cp936",
            "ms936",
            "windows-936",
            "euc-cn",
            "hz-gb-2312",
            "gb18030",
        ),
        "gb18030",
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5", "cp950"), "big5hkscs"),
    **dict.fromkeys(
        ("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii", "iso8859-1", "l1", "windows-1252"), "cp1252"
    ),
    **dict.fromkeys(("utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"), "utf-8"),
    # a page cannot declare UTF-16 in its own (ASCII-compatible) bytes: WHATWG reads it as UTF-8
    **dict.fromkeys(("utf-16", "utf-16le", "utf-16be", "utf-32"), "utf-8"),
    **dict.fromkeys(("shift_jis", "sjis", "x-sjis", "ms_kanji", "windows-31j"), "cp932"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "windows-949"), "cp949"),
}
# What charset-normalizer tends to answer for short GBK text (FIELD-NOTES): check gb18030 first.
_CJK_CONFUSABLE = {
    "big5",
    "big5hkscs",
    "cp950",
    "cp949",
    "euc_kr",
    "johab",
    "shift_jis",
    "cp932",
    "euc_jp",
    "iso2022_jp",
    "iso2022_kr",
    "euc_jis_2004",
    "shift_jis_2004",
    "shift_jisx0213",
}
_MULTIBYTE = _CJK_CONFUSABLE | {"gb18030", "gbk", "gb2312", "utf-8", "utf_8"}

_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:+-]+)""", re.I)
_META_TAG = re.compile(rb"<meta\b[^>]*>", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9_.:+-]+)["']""", re.I)
_HIDDEN = re.compile(rb"<!--.*?(?:-->|$)|<script\b.*?(?:</script\s*>|$)", re.I | re.S)

_NEAR_UTF8 = 0.01  # replacements per non-ASCII byte that still mean "UTF-8 with a bad byte"
_ASCII_BYTES = bytes(range(128))
_ALMOST_CLEAN = 0.002  # gb18030 with this share of replacements beats a single-byte guess
# characters a Latin-1 / cp1252 / Latin-9 reading of multi-byte text produces, in runs
_LATIN_RUN = re.compile(
    "[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]{2,}"
)
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_MIN_MOJIBAKE = 40  # Latin-1 characters in runs before a repair is tried
# how a browser reads "windows-1252": its 27 extra characters at 0x80-0x9f, the rest as Latin-1 (so
# undefined 0x81, 0x8d, ... survive as C1 controls, which Python's cp1252 refuses)
_CP1252_EXTRA = {
    ord(bytes([b]).decode("cp1252")): chr(b) for b in range(0x80, 0xA0) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_LATIN9_ONLY = frozenset("€ŠšŽžŒœŸ")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_LETTER = re.compile(r"[^\W\d_]")
_GARBAGE_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str  # Python codec name actually used ("gb18030", or "cp1252>gb18030" after a repair)
    replaced: bool  # True when undecodable bytes became U+FFFD
    repaired: bool = False  # True when Latin-1-style mojibake was turned back
    undecodable: str | None = None  # why the text is not text (outcomes kind "undecodable"), else None
    how: str = ""  # why this encoding: "bom", "header", "meta", "utf-8", "guess", ... (for --explain)


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


def _lenient(body: bytes, codec: str) -> tuple[str, int] | None:
    try:
        text = body.decode(codec, "replace")
    except LookupError:
        return None
    return text, text.count("\ufffd")


def decode_html(body: bytes, content_type: str | None = None) -> DecodedText:
    """Decode a page; never raises. See the module docstring for the order."""
    text, encoding, replaced, how = _decode(body, content_type)
    repaired = False
    if len(text) >= _MIN_MOJIBAKE and not replaced:
        fixed, via = repair_mojibake(text)
        if via:
            text, encoding, repaired = fixed, f"{encoding}>{via}", True
            how += ", then mojibake repaired"
    return DecodedText(text, encoding, replaced, repaired, undecodable_reason(text), how)


def _decode(body: bytes, content_type: str | None) -> tuple[str, str, bool, str]:
    for bom, bom_codec in _BOMS:
        if body.startswith(bom):
            rest = body[len(bom) :]
            text = _strict(rest, bom_codec)
            if text is not None:
                return text, bom_codec, False, "byte-order mark"
            return rest.decode(bom_codec, "replace"), bom_codec, True, "byte-order mark"

    declared: list[str] = []
    for where, label in (
        ("Content-Type header", header_charset(content_type)),
        ("<meta> charset", meta_charset(body[:SNIFF_BYTES])),
    ):
        codec = normalize_label(label)
        if codec is not None and codec not in declared:
            declared.append(codec)
            text = _strict(body, codec)
            if text is not None:
                return text, codec, False, f"{where} {label!r}"
    if "utf-8" not in declared:
        text = _strict(body, "utf-8")
        if text is not None:
            return (
                text,
                "utf-8",
                False,
                "valid UTF-8" + (f" (declared {', '.join(declared)} failed)" if declared else ""),
            )

    # nothing decodes cleanly. UTF-8 but for a few bytes is UTF-8: valid multi-byte sequences do
    # not happen by chance, and gb18030 reads UTF-8 bytes "successfully" as nonsense
    utf8 = body.decode("utf-8", "replace")
    utf8_bad = utf8.count("\ufffd")
    high_bytes = len(body.translate(None, _ASCII_BYTES))
    if utf8_bad <= _NEAR_UTF8 * high_bytes:
        return utf8, "utf-8", True, f"UTF-8 but for {utf8_bad} bad byte sequence(s)"
    if not declared:
        guessed = _normalizer_guess(body)
        if guessed is not None:
            text = _strict(body, guessed) if guessed not in _CJK_CONFUSABLE else None
            gb = _lenient(body, "gb18030")
            if gb is not None and gb[1] <= _ALMOST_CLEAN * len(gb[0]) and guessed not in _MULTIBYTE:
                return gb[0], "gb18030", gb[1] > 0, f"gb18030 over charset-normalizer's {guessed}"
            if guessed in _CJK_CONFUSABLE:
                return (*_best_cjk(body, guessed), f"charset-normalizer said {guessed}; more common hanzi")
            if text is not None:
                return text, guessed, False, "charset-normalizer's guess"
    # fewest replacements wins; declared charsets first on a tie
    scored = [
        (r[1], i, codec, r[0])
        for i, codec in enumerate(declared + ["gb18030", "utf-8"])
        if (r := _lenient(body, codec)) is not None
    ]
    bad, _, codec, text = min(scored)
    return text, codec, bad > 0, f"fewest replacement characters ({bad})"


def _best_cjk(body: bytes, guessed: str) -> tuple[str, str, bool]:
    """gb18030 or the confusable guess (Big5, ...): the strict decode with more common hanzi."""
    options = [(codec, text) for codec in ("gb18030", guessed) if (text := _strict(body, codec)) is not None]
    if not options:
        text = body.decode("gb18030", "replace")
        return text, "gb18030", "\ufffd" in text
    codec, text = max(options, key=lambda o: _common_hanzi(o[1]))
    return text, codec, False


# frequent characters of Chinese prose, simplified and traditional forms: text decoded with the
# wrong double-byte codec is made of rare characters
_COMMON = frozenset(
    "的一是不了人我在有他这這中大来來上国國个個到说說们們为為子和你地出道也时時年得就那要下以生会會"
    "自着著去之过過家学學对對可她里裡后後小么麼心多天而能好都然没沒日于於起还還发發成事只作当當想看文无無开開"
    "手十用主行方又如前所本见見经經头頭面公同三已老从從动動两兩长長"
)


def _common_hanzi(text: str) -> int:
    return sum(1 for ch in text if ch in _COMMON)


def repair_mojibake(text: str) -> tuple[str, str]:
    """Text whose multi-byte characters were read as Latin-1/cp1252/Latin-9 (and stored so), back
    to what it was; repeated while it improves (pages mis-decoded twice). Returns (text, how) with
    how == "" when nothing was done."""
    steps: list[str] = []
    for _ in range(3):
        runs = _latin_runs(text)
        if runs < _MIN_MOJIBAKE or runs < len(_CJK.findall(text)):
            break
        step = _utf8_step(text, runs) or _cjk_step(text, runs)
        if step is None:
            break
        text = step[0]
        steps.append(step[1])
    return text, ">".join(steps)


def _latin_runs(text: str) -> int:
    return sum(len(m) for m in _LATIN_RUN.findall(text))


def _original_bytes(text: str) -> list[tuple[str, bytes]]:
    """The bytes the text may have been read from: Latin-9 first when the text uses a character only
    Latin-9 has at that byte (and none it lacks: then it fails to encode), then windows-1252."""
    out: list[tuple[str, bytes]] = []
    if any(ch in _LATIN9_ONLY for ch in text):
        try:
            out.append(("iso8859-15", text.encode("iso8859-15")))
        except UnicodeEncodeError:
            pass
    try:
        out.append(("cp1252", text.translate(_CP1252_EXTRA).encode("latin-1")))
    except UnicodeEncodeError:
        pass
    return out


def _utf8_step(text: str, runs: int) -> tuple[str, str] | None:
    """UTF-8 read as a single-byte code page: valid UTF-8 does not come back by chance, so a strict
    decode that leaves fewer Latin-1 runs is the step (a page read so twice leaves runs once more)."""
    for via, raw in _original_bytes(text):
        candidate = _strict(raw, "utf-8")
        if candidate is not None and _latin_runs(candidate) < runs:
            return candidate, f"{via}>utf-8"
    return None


def _cjk_step(text: str, runs: int) -> tuple[str, str] | None:
    """GBK or Big5 read as a single-byte code page: every reading gives hanzi, the right one gives
    common ones; the first byte reading that decodes is the one (see _original_bytes)."""
    best: tuple[int, str, str] | None = None
    for via, raw in _original_bytes(text):
        if best is not None:
            break
        for target in ("gb18030", "big5hkscs"):
            candidate = _strict(raw, target)
            if candidate is None:
                continue
            gain = len(_CJK.findall(candidate)) - _latin_runs(candidate) + 2 * _common_hanzi(candidate)
            if best is None or gain > best[0]:
                best = (gain, candidate, f"{via}>{target}")
    if best is None or best[0] <= runs // 4:
        return None
    return best[1], best[2]


def undecodable_reason(text: str) -> str | None:
    """Why this is not text, or None: mostly replacement or control characters, or no letters."""
    if not text:
        return None
    bad = len(_CONTROL.findall(text))
    if bad > _GARBAGE_SHARE * len(text):
        return f"{bad} of {len(text)} characters are replacement or control characters"
    if len(text) >= 200 and not _LETTER.search(text):
        return "no letters of any script"
    return None


def looks_binary(body: bytes) -> bool:
    """An executable, an image, an archive: NUL bytes near the start (no HTML, XML or feed has them)."""
    return b"\x00" in body[:8192]


def _normalizer_guess(body: bytes) -> str | None:
    from charset_normalizer import from_bytes  # imported lazily: it is only needed on undeclared, non-UTF-8 pages

    best = from_bytes(body).best()
    if best is None:
        return None
    return normalize_label(best.encoding) or best.encoding
