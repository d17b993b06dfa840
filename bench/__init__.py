"""Reproducible benchmarks of sieve against trafilatura alone and a Scrapy pipeline.

Each module is a CLI that prints a table and writes JSON under bench/out/ (git-ignored):
`python -m bench.race` (the crawl on the user's path: the installed `sieve crawl` CLI, whole process,
against Scrapy; it leads BENCHMARKS.md), `bench.extraction`, `bench.crawl` (sieve's Pipeline driven
directly), `bench.server` (the demo site's own ceiling), `bench.warehouse`, `bench.scaling`,
`bench.startup`, `bench.profile`, `bench.pyspy`. `python -m bench.run_all` (`make bench`) runs them all
and regenerates BENCHMARKS.md. Machines are noisy: every figure is a median of repeated runs, and every
ratio is taken between runs interleaved in the same process or the same bench run.
"""

__all__ = ["common"]
