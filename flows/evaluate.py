"""`sieve eval`: score sieve (and other extractors, side by side) against golden text.

Two dataset layouts are read:
* our golden corpus (tests/golden/): `name.html` (bytes, any declared charset) beside `name.txt`
  (expected clean text) and `name.json` ({"url", "title", "published_at", "source_rules",
  "boilerplate": [...], "rejection": null | "list_page" ...}); scored per character, whitespace
  and punctuation ignored, plus leaked boilerplate, title and date accuracy;
* the public sets in ../shared/evaldata/ (`html/<id>.html` + `gold/<id>.txt`); scored with their
  README's bag-of-tokens F1 (one token per CJK character, lowercased English words), so the
  numbers compare with the table published there.

Every page is decoded from its bytes by crawler/decode.py, the decoder every crawled page goes
through, so a decoding bug shows here too. Pure orchestration over `extractors`; no Prefect here.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from statistics import mean

from crawler.decode import decode_html
from extractors import Article, Rejection, Rules, extract
from extractors.scoring import char_scores, leaked_lines, token_scores

__all__ = [
    "EvalPage", "PageResult", "EvalReport", "Summary", "load_dataset", "run_eval",
    "print_report", "EXTRACTORS", "BenchResult", "run_benchmark",
]

FETCHED_AT = datetime.fromisoformat("2026-11-27T12:00:00+08:00")  # fixed "now" for relative dates


@dataclass(frozen=True, slots=True)
class EvalPage:
    dataset: str
    page_id: str
    html: str
    expected_text: str | None        # None: the page is not an article (expect a rejection)
    url: str = ""
    title: str | None = None
    published_at: str | None = None  # ISO 8601, or None when the page carries no date
    rules: Rules | None = None
    boilerplate: tuple[str, ...] = ()
    metric: str = "chars"            # "chars" (golden) or "tokens" (public sets)
    check_meta: bool = True
    fetched_at: datetime = FETCHED_AT  # "now" for relative dates ("3小时前")


@dataclass(frozen=True, slots=True)
class PageResult:
    dataset: str
    page_id: str
    extractor: str
    precision: float | None
    recall: float | None
    f1: float | None
    leaked: tuple[str, ...] = ()
    title_ok: bool | None = None
    date_ok: bool | None = None
    rejection_ok: bool | None = None   # for pages that are not articles
    got_rejection: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    dataset: str
    extractor: str
    pages: int
    precision: float
    recall: float
    f1: float
    leaked: int
    titles_ok: int
    titles_checked: int
    dates_ok: int
    dates_checked: int
    rejections_ok: int
    rejections_checked: int
    pages_per_second: float


@dataclass(slots=True)
class EvalReport:
    results: list[PageResult] = field(default_factory=list)

    def summaries(self) -> list[Summary]:
        keys: list[tuple[str, str]] = []
        for r in self.results:
            if (r.dataset, r.extractor) not in keys:
                keys.append((r.dataset, r.extractor))
        out = []
        for dataset, extractor in keys:
            rows = [r for r in self.results if r.dataset == dataset and r.extractor == extractor]
            scored = [r for r in rows if r.f1 is not None]
            titles = [r.title_ok for r in rows if r.title_ok is not None]
            dates = [r.date_ok for r in rows if r.date_ok is not None]
            rejections = [r.rejection_ok for r in rows if r.rejection_ok is not None]
            seconds = sum(r.seconds for r in rows) or 1e-9
            out.append(Summary(
                dataset, extractor, len(rows),
                mean(r.precision for r in scored) if scored else 0.0,
                mean(r.recall for r in scored) if scored else 0.0,
                mean(r.f1 for r in scored) if scored else 0.0,
                sum(len(r.leaked) for r in rows),
                sum(titles), len(titles), sum(dates), len(dates), sum(rejections), len(rejections),
                len(rows) / seconds,
            ))
        return out

    def summary(self, dataset: str, extractor: str = "sieve") -> Summary | None:
        return next((s for s in self.summaries() if s.dataset == dataset and s.extractor == extractor), None)


# ---- datasets ---------------------------------------------------------------------------------

def load_dataset(directory: Path) -> list[EvalPage]:
    """Pages of a golden folder or of a public set (html/ + gold/)."""
    directory = Path(directory)
    if (directory / "html").is_dir() and (directory / "gold").is_dir():
        return _load_public(directory)
    return _load_golden(directory)


def _load_public(directory: Path) -> list[EvalPage]:
    pages = []
    for html_path in sorted((directory / "html").glob("*.html")):
        gold = directory / "gold" / f"{html_path.stem}.txt"
        if not gold.exists():
            continue
        pages.append(EvalPage(
            dataset=directory.name, page_id=html_path.stem,
            html=decode_html(html_path.read_bytes()).text,
            expected_text=gold.read_text(encoding="utf-8"), metric="tokens", check_meta=False,
        ))
    return pages


def _load_golden(directory: Path) -> list[EvalPage]:
    pages = []
    for html_path in sorted(directory.glob("*.html")):
        sidecar = html_path.with_suffix(".json")
        spec = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
        text_path = html_path.with_suffix(".txt")
        expected = text_path.read_text(encoding="utf-8") if text_path.exists() and not spec.get("rejection") else None
        source_rules = spec.get("source_rules")
        pages.append(EvalPage(
            dataset=directory.name, page_id=html_path.stem, html=decode_html(html_path.read_bytes()).text,
            expected_text=expected, url=spec.get("url", ""), title=spec.get("title"),
            published_at=spec.get("published_at"), rules=Rules(**source_rules) if source_rules else None,
            boilerplate=tuple(spec.get("boilerplate", ())), metric="chars",
            fetched_at=datetime.fromisoformat(spec["fetched_at"]) if spec.get("fetched_at") else FETCHED_AT,
        ))
    return pages


# ---- extractors -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Output:
    text: str | None                 # None: the extractor found no article
    title: str | None = None
    published_at: datetime | None = None
    date_only: bool = False          # the extractor reports days, not times
    rejection: str | None = None


def _run_sieve(page: EvalPage) -> Output:
    result = extract(page.html, page.url, page.rules, fetched_at=page.fetched_at)
    if isinstance(result, Rejection):
        return Output(None, result.meta.get("title"), rejection=result.reason)
    assert isinstance(result, Article)
    return Output(result.text, result.title, result.published_at)


def _run_trafilatura(page: EvalPage) -> Output:
    import trafilatura

    doc = trafilatura.bare_extraction(page.html, url=page.url or None, with_metadata=page.check_meta)
    if doc is None:
        return Output(None, rejection="none")
    date = None
    if getattr(doc, "date", None):
        try:
            date = datetime.fromisoformat(doc.date)
        except ValueError:
            date = None
    return Output(doc.text or None, getattr(doc, "title", None), date, date_only=True)


def _run_readability(page: EvalPage) -> Output:
    from readability import Document
    from selectolax.lexbor import LexborHTMLParser

    from extractors.dom import node_text

    doc = Document(page.html)
    summary_html = doc.summary(html_partial=True)
    tree = LexborHTMLParser(summary_html)
    text = node_text(tree.body) if tree.body is not None else ""
    return Output(text or None, doc.short_title() if page.check_meta else None)


EXTRACTORS: dict[str, Callable[[EvalPage], Output]] = {
    "sieve": _run_sieve,
    "sieve+learned": _run_sieve,   # the page's rules merged with rules learned from its whole dataset
    "trafilatura": _run_trafilatura,
    "readability": _run_readability,
}


# ---- scoring ----------------------------------------------------------------------------------

def _same_title(got: str | None, want: str | None) -> bool:
    squash = lambda s: "".join((s or "").split())  # noqa: E731
    return squash(got) == squash(want)


def _same_date(got: datetime | None, want: str | None, date_only: bool) -> bool:
    if want is None or got is None:
        return got is None and want is None
    expected = datetime.fromisoformat(want)
    if date_only:
        return got.date() == expected.date()
    if got.tzinfo is None or expected.tzinfo is None:
        return got.replace(tzinfo=None) == expected.replace(tzinfo=None)
    return got == expected


def score_page(page: EvalPage, extractor: str) -> PageResult:
    started = time.perf_counter()
    try:
        out = EXTRACTORS[extractor](page)
    except Exception as exc:  # another library's crash is a result to show, not ours to raise
        out = Output(None, rejection=f"crash: {type(exc).__name__}")
    seconds = time.perf_counter() - started
    meta = {}
    if page.check_meta and page.expected_text is not None:
        meta = {"title_ok": _same_title(out.title, page.title),
                "date_ok": _same_date(out.published_at, page.published_at, out.date_only)}
    if page.expected_text is None:
        return PageResult(page.dataset, page.page_id, extractor, None, None, None,
                          leaked=tuple(leaked_lines(out.text or "", page.boilerplate)),
                          rejection_ok=out.text is None, got_rejection=out.rejection, seconds=seconds)
    scorer = token_scores if page.metric == "tokens" else char_scores
    s = scorer(out.text or "", page.expected_text)
    return PageResult(page.dataset, page.page_id, extractor, s.precision, s.recall, s.f1,
                      leaked=tuple(leaked_lines(out.text or "", page.boilerplate)),
                      got_rejection=out.rejection, seconds=seconds, **meta)


def run_eval(golden_dirs: list[Path], against: list[str], *, per_page: bool = True,
             console=None, default_rules: Rules | None = None, min_share: float = 0.3) -> EvalReport:
    """Score sieve and the extractors named in `against` on every page of every folder.

    `default_rules` apply to pages that name no rules of their own (a source's rules from config.yaml).
    "sieve+learned" scores sieve with rules learned from the folder's own pages (`sieve rules suggest`'s
    learned mode) merged into each page's rules, beside the configured ones.
    Prints per-page rows (optional) and a summary with rich when a console is given.
    """
    names = ["sieve"] + [name for name in against if name != "sieve"]
    unknown = [name for name in names if name not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown extractor(s): {', '.join(unknown)}; known: {', '.join(EXTRACTORS)}")
    report = EvalReport()
    for directory in golden_dirs:
        pages = load_dataset(Path(directory))
        if default_rules is not None:
            pages = [p if p.rules is not None else replace(p, rules=default_rules) for p in pages]
        learned = None
        if "sieve+learned" in names:
            from extractors.learned import learned_rules, merge_rules

            learned = learned_rules([(p.url or p.page_id, p.html) for p in pages], min_share)
        for page in pages:
            for name in names:
                if name == "sieve+learned":
                    page_with_learned = replace(page, rules=merge_rules(page.rules or Rules(), learned))
                    report.results.append(score_page(page_with_learned, name))
                else:
                    report.results.append(score_page(page, name))
    if console is not None:
        print_report(report, console, per_page=per_page)
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(report: EvalReport, console, *, per_page: bool = True) -> None:
    """Rich tables: one row per page and extractor (optional), then one per dataset and extractor."""
    from rich.table import Table

    if per_page:
        table = Table(title="per page", show_lines=False)
        for column in ("dataset", "page", "extractor", "P", "R", "F1", "leaked", "title", "date", "note"):
            table.add_column(column, justify="right" if column in ("P", "R", "F1", "leaked") else "left")
        for r in report.results:
            mark = lambda ok: "-" if ok is None else ("ok" if ok else "WRONG")  # noqa: E731
            note = ""
            if r.rejection_ok is not None:
                note = "rejected ok" if r.rejection_ok else "NOT rejected"
            elif r.got_rejection:
                note = f"rejected: {r.got_rejection}"
            table.add_row(r.dataset, r.page_id, r.extractor, _fmt(r.precision), _fmt(r.recall), _fmt(r.f1),
                          str(len(r.leaked)), mark(r.title_ok), mark(r.date_ok), note)
        console.print(table)
    table = Table(title="summary (golden: characters; public sets: bag-of-tokens)")
    for column in ("dataset", "extractor", "pages", "P", "R", "F1", "leaked", "titles", "dates", "non-articles", "pages/s"):
        table.add_column(column, justify="left" if column in ("dataset", "extractor") else "right")
    for s in report.summaries():
        table.add_row(
            s.dataset, s.extractor, str(s.pages), _fmt(s.precision), _fmt(s.recall), _fmt(s.f1), str(s.leaked),
            f"{s.titles_ok}/{s.titles_checked}" if s.titles_checked else "-",
            f"{s.dates_ok}/{s.dates_checked}" if s.dates_checked else "-",
            f"{s.rejections_ok}/{s.rejections_checked}" if s.rejections_checked else "-",
            f"{s.pages_per_second:.1f}",
        )
    console.print(table)


# ---- speed ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BenchResult:
    dataset: str
    pages: int
    sieve_pages_per_second: float
    trafilatura_pages_per_second: float   # trafilatura.extract(html) with its defaults

    @property
    def speedup(self) -> float:
        return self.sieve_pages_per_second / self.trafilatura_pages_per_second if self.trafilatura_pages_per_second else 0.0


def run_benchmark(dirs: list[Path], *, rounds: int = 2, console=None) -> list[BenchResult]:
    """sieve's extract() against trafilatura.extract alone, page by page, interleaved so that a
    busy machine slows both alike (decoding and file reading are outside the clock)."""
    import trafilatura

    results = []
    for directory in dirs:
        pages = load_dataset(Path(directory))
        sieve_seconds = trafilatura_seconds = 0.0
        for _ in range(rounds):
            for page in pages:
                started = time.perf_counter()
                extract(page.html, page.url, page.rules, fetched_at=page.fetched_at)
                middle = time.perf_counter()
                trafilatura.extract(page.html)
                trafilatura_seconds += time.perf_counter() - middle
                sieve_seconds += middle - started
        count = rounds * len(pages)
        results.append(BenchResult(Path(directory).name, len(pages), count / (sieve_seconds or 1e-9),
                                   count / (trafilatura_seconds or 1e-9)))
    if console is not None:
        from rich.table import Table

        table = Table(title="speed: sieve vs trafilatura.extract (defaults)")
        for column in ("dataset", "pages", "sieve pages/s", "trafilatura pages/s", "speed-up"):
            table.add_column(column, justify="left" if column == "dataset" else "right")
        for r in results:
            table.add_row(r.dataset, str(r.pages), f"{r.sieve_pages_per_second:.1f}",
                          f"{r.trafilatura_pages_per_second:.1f}", f"{r.speedup:.2f}x")
        console.print(table)
    return results
