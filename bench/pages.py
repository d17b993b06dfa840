"""The page sets the extraction benchmark runs on, decoded once, with gold text where a set has it.

Sets: the golden corpus (tests/golden), demo pages rendered in memory (DemoSite(200)), and the public
sets under ../shared/evaldata (read in place, never copied into the project).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT

EVALDATA = ROOT.parent / "shared" / "evaldata"
GOLDEN = ROOT / "tests" / "golden"
DEMO_BASE = "http://127.0.0.1:8765"


@dataclass
class Page:
    name: str
    url: str
    html: str                 # decoded once, the same string goes to every extractor
    gold: str | None = None   # expected article text, when the set has it
    rules: object = None      # extractors.Rules for this page (golden pages name their source's rules)
    fetched_at: object = None # datetime the page was "fetched" (relative dates resolve against it)


@dataclass
class PageSet:
    name: str
    pages: list[Page]
    metric: str               # "char" (sieve eval's metric) or "token" (evaldata README's metric)
    rules: object = None      # extractors.Rules for sieve, None for the global rules only
    note: str = ""
    skipped: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(len(p.html.encode("utf-8", "replace")) for p in self.pages)


def decode(body: bytes, content_type: str | None = None) -> str:
    """sieve's own decoder when the crawler layer is there (meta charset, GBK); else UTF-8 then GB18030."""
    try:
        from crawler import decode_html
    except ImportError:
        decode_html = None
    if decode_html is not None:
        return decode_html(body, content_type).text
    for codec in ("utf-8", "gb18030"):
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            continue
    return body.decode("utf-8", "replace")


def _source_rules(name: str) -> object:
    try:
        from flows.config import load_config

        return load_config(ROOT / "config.yaml").sources[name].rules
    except Exception:
        return None


def demo_set(n: int = 200) -> PageSet:
    from demo import DemoSite

    site = DemoSite(n)
    pages = []
    for article in site.articles():
        status, body, content_type = site.render(article.path)
        if status == 200:
            pages.append(Page(f"demo_{article.number}", DEMO_BASE + article.path, decode(body, content_type), article.text))
    return PageSet("demo", pages, "char", rules=_source_rules("demo"),
                   note=f"DemoSite({n}) article pages, demo source rules")


def _golden_gold(html_path: Path) -> tuple[str | None, str | None, str | None]:
    """(gold text, url, source) from whatever sidecar the golden corpus keeps next to a page."""
    for suffix in (".txt", ".expected.txt", ".gold.txt"):
        candidate = html_path.with_name(html_path.stem + suffix)
        if candidate.exists() and candidate != html_path:
            return candidate.read_text(encoding="utf-8"), None, None
    for suffix in (".json", ".expected.json", ".yaml", ".yml", ".expected.yaml"):
        candidate = html_path.with_name(html_path.stem + suffix)
        if not candidate.exists():
            continue
        if suffix.endswith("json"):
            data = json.loads(candidate.read_text(encoding="utf-8"))
        else:
            import yaml

            data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            text = data.get("text") or data.get("expected_text") or data.get("gold")
            if isinstance(text, list):
                text = "\n".join(text)
            return text, data.get("url"), data.get("source")
    return None, None, None


def golden_set() -> PageSet:
    """tests/golden as `sieve eval` reads it (flows.evaluate.load_dataset), else the bench's own reading."""
    try:
        from flows.evaluate import load_dataset
    except ImportError:
        load_dataset = None
    if load_dataset is not None and GOLDEN.exists():
        loaded = load_dataset(GOLDEN)
        pages = [Page(p.page_id, p.url or f"https://www.juredian.com/news/{p.page_id}.html", p.html, p.expected_text,
                      p.rules, p.fetched_at) for p in loaded]
        with_gold = sum(1 for p in pages if p.gold is not None)
        return PageSet("golden", pages, "char",
                       note=f"tests/golden via flows.evaluate ({len(pages)} pages, {with_gold} with gold text, "
                            f"{len(pages) - with_gold} non-articles timed but not scored)")
    pages, skipped = [], []
    files = sorted(GOLDEN.glob("*.html")) if GOLDEN.exists() else []
    for path in files:
        gold, url, _source = _golden_gold(path)
        pages.append(Page(path.stem, url or f"https://www.juredian.com/news/{path.stem}.html",
                          decode(path.read_bytes()), gold))
        if gold is None:
            skipped.append(path.name)
    return PageSet("golden", pages, "char",
                   note=f"tests/golden ({len(files)} pages, {len(files) - len(skipped)} with gold text)", skipped=skipped)


def evaldata_set(name: str, limit: int | None = None) -> PageSet:
    folder = EVALDATA / name
    urls = {}
    tsv = folder / "urls.tsv"
    if tsv.exists():
        for line in tsv.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                urls[parts[0]] = parts[1]
    pages = []
    for path in sorted((folder / "html").glob("*.html"))[:limit]:
        gold_path = folder / "gold" / f"{path.stem}.txt"
        gold = gold_path.read_text(encoding="utf-8") if gold_path.exists() else None
        pages.append(Page(path.stem, urls.get(path.stem, f"https://example.com/{path.stem}.html"),
                          decode(path.read_bytes()), gold))
    return PageSet(name, pages, "token", note=f"../shared/evaldata/{name} (global rules only)")


def all_sets(quick: bool = False) -> list[PageSet]:
    limit = 40 if quick else None
    sets = [golden_set(), demo_set(60 if quick else 200),
            evaldata_set("gne_silver_zh", limit), evaldata_set("scrapinghub_aeb", limit)]
    return [s for s in sets if s.pages]
