"""`sieve eval`: score sieve (and other extractors, side by side) against golden text.

Two dataset layouts (read by flows/eval_data.py) are scored:
* our golden corpus (tests/golden/): `name.html` (bytes, any declared charset) beside `name.txt`
  (expected clean text) and `name.json` ({"url", "title", "published_at", "source_rules",
  "boilerplate": [...], "rejection": null | "list_page" ...}); scored per character, whitespace
  and punctuation ignored, plus leaked boilerplate, title and date accuracy;
* the public sets in ../shared/evaldata/ (`html/<id>.html` + `gold/<id>.txt`); scored with their
  README's bag-of-tokens F1 (one token per CJK character, lowercased English words), so the
  numbers compare with the table published there.

Every page is decoded from its bytes by crawler/decode.py (flows/eval_data.py, whose `load_dataset` and
`EvalPage` are re-exported here). Pure orchestration over `extractors`; no Prefect here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from statistics import mean

from extractors import Article, Rejection, Rules, extract
from extractors.scoring import char_scores, leaked_lines, token_scores
from flows.causes import LOW_F1, cause
from flows.eval_data import EvalPage, load_dataset

__all__ = ["EvalPage", "PageResult", "EvalReport", "Summary", "load_dataset", "run_eval", "score_page", "EXTRACTORS"]


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
    rejection_ok: bool | None = None  # for pages that are not articles
    got_rejection: str | None = None
    seconds: float = 0.0
    cause: str = ""  # what went wrong, when the page scored low (see causes.py)


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
            # a page is scored on all three or none (PageResult's None for unscored pages)
            scored = [
                (r.precision, r.recall, r.f1)
                for r in rows
                if r.precision is not None and r.recall is not None and r.f1 is not None
            ]
            titles = [r.title_ok for r in rows if r.title_ok is not None]
            dates = [r.date_ok for r in rows if r.date_ok is not None]
            rejections = [r.rejection_ok for r in rows if r.rejection_ok is not None]
            seconds = sum(r.seconds for r in rows) or 1e-9
            out.append(
                Summary(
                    dataset,
                    extractor,
                    len(rows),
                    mean(p for p, _, _ in scored) if scored else 0.0,
                    mean(r for _, r, _ in scored) if scored else 0.0,
                    mean(f for _, _, f in scored) if scored else 0.0,
                    sum(len(r.leaked) for r in rows),
                    sum(titles),
                    len(titles),
                    sum(dates),
                    len(dates),
                    sum(rejections),
                    len(rejections),
                    len(rows) / seconds,
                )
            )
        return out

    def oracle(self, dataset: str) -> float | None:
        """Mean over pages of the best F1 any of the extractors scored: what picking per page would give."""
        best: dict[str, float] = {}
        names = set()
        for r in self.results:
            if r.dataset == dataset and r.f1 is not None and r.extractor != "sieve+learned":
                names.add(r.extractor)
                best[r.page_id] = max(best.get(r.page_id, 0.0), r.f1)
        return mean(best.values()) if best and len(names) > 1 else None

    def worst(self, dataset: str, count: int, extractor: str = "sieve") -> list[PageResult]:
        rows = [r for r in self.results if r.dataset == dataset and r.extractor == extractor and r.f1 is not None]
        return sorted(rows, key=lambda r: r.f1 or 0.0)[:count]

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r.dataset for r in self.results))

    def summary(self, dataset: str, extractor: str = "sieve") -> Summary | None:
        return next((s for s in self.summaries() if s.dataset == dataset and s.extractor == extractor), None)


# ---- extractors -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Output:
    text: str | None  # None: the extractor found no article
    title: str | None = None
    published_at: datetime | None = None
    date_only: bool = False  # the extractor reports days, not times
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
    if raw_date := getattr(doc, "date", None):  # a Document (trafilatura 2); the dict form has no attributes
        try:
            date = datetime.fromisoformat(raw_date)
        except ValueError:
            date = None
    return Output(getattr(doc, "text", None) or None, getattr(doc, "title", None), date, date_only=True)


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
    "sieve+learned": _run_sieve,  # the page's rules merged with rules learned from its whole dataset
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
        meta = {
            "title_ok": _same_title(out.title, page.title),
            "date_ok": _same_date(out.published_at, page.published_at, out.date_only),
        }
    if page.expected_text is None:
        return PageResult(
            page.dataset,
            page.page_id,
            extractor,
            None,
            None,
            None,
            leaked=tuple(leaked_lines(out.text or "", page.boilerplate)),
            rejection_ok=out.text is None,
            got_rejection=out.rejection,
            seconds=seconds,
        )
    scorer = token_scores if page.metric == "tokens" else char_scores
    s = scorer(out.text or "", page.expected_text)
    why = cause(out.text, page.expected_text, s, out.rejection, page.decoding, page.metric) if s.f1 < LOW_F1 else ""
    return PageResult(
        page.dataset,
        page.page_id,
        extractor,
        s.precision,
        s.recall,
        s.f1,
        leaked=tuple(leaked_lines(out.text or "", page.boilerplate)),
        got_rejection=out.rejection,
        seconds=seconds,
        cause=why,
        **meta,
    )


def run_eval(
    golden_dirs: list[Path],
    against: list[str],
    *,
    per_page: bool = True,
    console=None,
    default_rules: Rules | None = None,
    min_share: float = 0.3,
    workers: int = 1,
    worst: int = 8,
) -> EvalReport:
    """Score sieve and the extractors named in `against` on every page of every folder.

    `default_rules` apply to pages that name no rules of their own (a source's rules from config.yaml).
    "sieve+learned" scores sieve with rules learned from the folder's own pages (`sieve rules suggest`'s
    learned mode) merged into each page's rules, beside the configured ones.
    Prints per-page rows (optional), a summary with the best-of-extractors oracle and the `worst`
    pages with their cause, with rich, when a console is given. `workers` > 1 scores pages in that
    many processes (the quality gate in the tests uses two).
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
        jobs = []
        for page in pages:
            for name in names:
                if name == "sieve+learned":
                    assert learned is not None  # learned above whenever this contender is asked for
                    jobs.append((replace(page, rules=merge_rules(page.rules or Rules(), learned)), name))
                else:
                    jobs.append((page, name))
        report.results.extend(_score_all(jobs, workers))
    if console is not None:
        from flows.eval_report import print_report

        print_report(report, console, per_page=per_page, worst=worst)
    return report


def _score_one(job: tuple[EvalPage, str]) -> PageResult:
    return score_page(*job)


def _score_all(jobs: list[tuple[EvalPage, str]], workers: int) -> list[PageResult]:
    if workers <= 1 or len(jobs) < 2 * workers:
        return [score_page(page, name) for page, name in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_score_one, jobs, chunksize=8))
