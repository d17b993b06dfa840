"""A fleet's test bench: demo sites served by FaultServers (one host each, so every host counts its own
requests in flight), a config whose demo source starts on all of them, and what the warehouse should hold."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from crawler import normalize_url
from demo import DemoSite
from tests.conftest import write_config
from tests.faultserver import FaultServer

LIST_QUERY = "?from=list&utm_source=juredian"    # how the demo's list pages link their articles


def serve_site(server: FaultServer, site: DemoSite, latency_s: float = 0.0, gate: threading.Event | None = None) -> None:
    """Every page of `site` on `server`, each answer `latency_s` late (a distant host); article pages wait
    for `gate` when one is given (a test holds a crawl mid-way)."""
    paths = ["/robots.txt", "/news/20230430/0.html", *(site.list_path(p) for p in range(1, site.n_list_pages + 1)),
             *(site.article_path(n) for n in range(1, site.n_articles + 1))]
    for path in paths:
        def answer(h, path: str = path) -> None:
            if latency_s and not h.wait(latency_s):
                return
            if gate is not None and path.startswith("/news/"):
                while not gate.wait(0.1):
                    if not h.wait(0):
                        return
            status, body, content_type = site.render(path)
            h.send_body(status, body, content_type)

        server.route(path, answer)


def article_urls(server: FaultServer, site: DemoSite) -> set[str]:
    """The canonical URLs of the site's articles, as the crawler stores them."""
    return {normalize_url(server.url(site.article_path(n) + LIST_QUERY)) for n in range(1, site.n_articles + 1)}


class Hosts:
    """Several demo sites, each on a FaultServer of its own (another port: another host for politeness)."""

    def __init__(self, servers: list[FaultServer], sites: list[DemoSite]) -> None:
        self.servers, self.sites = servers, sites

    def article_urls(self) -> set[str]:
        return set().union(*(article_urls(s, site) for s, site in zip(self.servers, self.sites, strict=True)))

    def fetched_twice(self) -> dict[str, int]:
        """Pages (robots.txt aside) any host served more than once."""
        return {server.url(path): n for server in self.servers for path, n in server.hits.items()
                if n > 1 and path != "/robots.txt"}

    def max_in_flight(self) -> list[int]:
        return [server.max_in_flight for server in self.servers]

    def start_urls(self) -> list[str]:
        return [server.url("/list/1.html") for server in self.servers]


@contextmanager
def demo_hosts(n_hosts: int, n_articles: int, *, latency_s: float = 0.0) -> Iterator[Hosts]:
    with ExitStack() as stack:
        servers = [stack.enter_context(FaultServer()) for _ in range(n_hosts)]
        sites = [DemoSite(n_articles, seed=7 + i) for i in range(n_hosts)]
        for server, site in zip(servers, sites, strict=True):
            serve_site(server, site, latency_s)
        yield Hosts(servers, sites)


def fleet_config(tmp_path: Path, hosts: Hosts, *, per_host: int = 2, fleet: dict | None = None,
                 commit_seconds: float = 0.3) -> Path:
    """A config whose demo source starts on every host, its warehouse and shards in tmp_path."""
    path = write_config(tmp_path, hosts.servers[0].base_url,
                        demo_overrides={"start_urls": hosts.start_urls(),
                                        "crawl": {"delay_seconds": 0.0, "per_host_concurrency": per_host}},
                        crawl={"retries": 0})
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["fleet"] = {"shards": str(tmp_path / "shards"), "claim_urls": 10, "max_claims": 2, "lease_seconds": 20,
                       "start_seconds": 120, "poll_seconds": 0.3, **(fleet or {})}
    config["pipeline"] = {"extract_workers": 1, "commit_seconds": commit_seconds, "commit_rows": 50}
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def fetched_by_claim(shards: Path | str) -> dict[str, list[str]]:
    """The URLs each claim's worker fetched, from the fetch files of its loaded parts."""
    import json

    import pyarrow.parquet as pq

    by_claim: dict[str, list[str]] = {}
    for manifest_path in sorted((Path(shards) / "loaded").rglob("manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        urls = by_claim.setdefault(manifest["claim_id"], [])
        if "fetches" in manifest["files"]:
            urls += pq.read_table(manifest_path.parent / "fetches.parquet").column("url").to_pylist()
    return by_claim
