"""Reproducible benchmarks of sieve against trafilatura alone and a Scrapy pipeline.

Each module is a CLI (`python -m bench.extraction`, `bench.crawl`, `bench.warehouse`,
`bench.scaling`, `bench.startup`, `bench.profile`) that prints a table and writes JSON under
bench/out/ (git-ignored); `python -m bench.run_all` (`make bench`) runs them all and regenerates
BENCHMARKS.md. Machines are noisy: every figure is a median of repeated runs, and every ratio is
taken between runs interleaved in the same process or the same bench run.
"""

__all__ = ["common"]
