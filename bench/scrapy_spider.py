"""The baseline: a Scrapy spider doing sieve's crawl job the way a Scrapy user would.

It follows the demo site's list pages, runs `trafilatura.extract` (defaults) on each article page in
the callback, and an item pipeline writes articles (URL, title, text, raw HTML, fetch time) to DuckDB
in batches of 500 through Arrow. Tuned fairly: no download delay, the same requests in flight as sieve
(all on one host), robots.txt obeyed (sieve obeys it too), cookies and telnet off, no autothrottle.

What it stores, against sieve: one `articles` row per page trafilatura returned text for (URL with the
tracking query dropped, title, text, raw HTML, fetch time). sieve stores more per page: the fetch log
(every fetch, good or bad), the raw page, the frontier (for resuming and conditional GET), extraction
outcomes, and articles with author, account, publication time, content hash, simhash and duplicate link.

    python -m bench.scrapy_spider --base http://127.0.0.1:PORT --db out.duckdb [--concurrency 16] [--max-pages N]

Prints one JSON line: pages, articles stored, wall seconds of the crawl (imports excluded).
"""
from __future__ import annotations

import argparse
import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.crawler import CrawlerProcess

LIST_PATH = re.compile(r"/list/\d+\.html$")
ARTICLE_PATH = re.compile(r"/news/\d{8}/\d+\.html$")
BATCH = 500


class DemoSpider(scrapy.Spider):
    name = "demo"

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [f"{base}/list/1.html"]
        self.allowed_domains = [urlsplit(base).hostname]

    def parse(self, response: scrapy.http.Response):  # list pages
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            parts = urlsplit(url)
            if ARTICLE_PATH.search(parts.path):
                # drop tracking query strings, as sieve's URL normalisation does
                yield scrapy.Request(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), callback=self.parse_article)
            elif LIST_PATH.search(parts.path):
                yield scrapy.Request(url, callback=self.parse)

    def parse_article(self, response: scrapy.http.Response):
        import trafilatura

        html = response.text
        text = trafilatura.extract(html, url=response.url)
        if not text:
            return
        title = response.css("h1::text").get() or response.css("title::text").get()
        yield {"url": response.url, "title": title, "text": text, "html": html,
               "fetched_at": datetime.now(UTC)}


class DuckDBPipeline:
    """Buffer items and insert them into DuckDB in batches (one transaction per batch, via Arrow)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.buffer: list[dict[str, Any]] = []
        self.stored = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> DuckDBPipeline:
        return cls(crawler.settings.get("DUCKDB_PATH"))

    def open_spider(self, spider: scrapy.Spider | None = None) -> None:
        import duckdb

        self.con = duckdb.connect(self.path)
        self.con.execute("CREATE TABLE IF NOT EXISTS articles (url VARCHAR PRIMARY KEY, title VARCHAR, text VARCHAR, "
                         "html VARCHAR, fetched_at TIMESTAMPTZ)")

    def process_item(self, item: dict[str, Any], spider: scrapy.Spider | None = None) -> dict[str, Any]:
        self.buffer.append(item)
        if len(self.buffer) >= BATCH:
            self.flush()
        return item

    def flush(self) -> None:
        if not self.buffer:
            return
        import pyarrow as pa

        batch = pa.Table.from_pylist(self.buffer)  # noqa: F841 (DuckDB reads the local Arrow table by name)
        self.con.execute("BEGIN")
        self.con.execute("INSERT INTO articles SELECT url, title, text, html, fetched_at FROM batch ON CONFLICT DO NOTHING")
        self.con.execute("COMMIT")
        self.stored += len(self.buffer)
        self.buffer.clear()

    def close_spider(self, spider: scrapy.Spider | None = None) -> None:
        self.flush()
        self.con.close()


def crawl(base: str, db: str, concurrency: int = 32, max_pages: int = 0) -> dict[str, Any]:
    settings = {
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "USER_AGENT": "scrapy-bench (+sieve benchmarks)",
        "ITEM_PIPELINES": {f"{__name__}.DuckDBPipeline": 300},
        "DUCKDB_PATH": db,
        "CLOSESPIDER_PAGECOUNT": max_pages,   # 0: no limit (a warm-up run sets one)
    }
    process = CrawlerProcess(settings, install_root_handler=False)
    crawler = process.create_crawler(DemoSpider)
    process.crawl(crawler, base=base)
    from bench.common import cpu_seconds

    cpu0, start = cpu_seconds(), time.perf_counter()
    process.start()
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    stats = crawler.stats.get_stats()
    import duckdb

    con = duckdb.connect(db, read_only=True)
    stored = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    con.close()
    responses = int(stats.get("downloader/response_count", 0))
    return {"contender": "scrapy", "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "cpu_before_s": round(cpu0, 3), "responses": responses,
            "pages": responses - 1,  # robots.txt is not a page
            "articles": stored, "errors": int(stats.get("log_count/ERROR", 0)), "concurrency": concurrency}


def main() -> None:
    parser = argparse.ArgumentParser(description="Scrapy + trafilatura + DuckDB baseline crawl of the demo site")
    parser.add_argument("--base", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-pages", type=int, default=0, help="stop after this many responses (0: no limit)")
    args = parser.parse_args()
    print(json.dumps(crawl(args.base, args.db, args.concurrency, args.max_pages)), flush=True)


if __name__ == "__main__":
    main()
