"""Claims for a fleet of workers: one claim per host at a time, a URL never claimed twice while its lease runs,
leases extended by proofs of life that came in time, and nothing lost when a lease ends."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from crawler import normalize_url
from crawler.fetcher import host_key
from warehouse import SourceBusy, Warehouse
from warehouse.claims import host_sql

from .test_warehouse_support import T0, fetch, frontier_row

LEASE = timedelta(seconds=60)
WEEK = timedelta(days=7)


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse(tmp_path / "w.duckdb")
    w.migrate()
    return w


def _seed(wh: Warehouse, hosts: dict[str, int]) -> None:
    rows = []
    for host, n in hosts.items():
        rows.append(frontier_row(f"http://{host}/list/1.html", kind="list"))
        rows += [frontier_row(f"http://{host}/a/{i}.html") for i in range(n)]
    wh.add_frontier(rows)


def _claim(wh: Warehouse, run: str = "run-1", *, at=T0, max_claims: int = 4, claim_urls: int = 100):
    return wh.claim(run, "demo", max_claims=max_claims, claim_urls=claim_urls, lease=LEASE, now=at)


def test_the_host_the_sql_sees_is_the_crawlers_host_key(wh) -> None:
    urls = ["http://127.0.0.1:8765/list/1.html", "https://WWW.Juredian.com/news/1.html?b=2&a=1",
            "http://user:pw@example.org:8080/x", "https://example.org:443/y", "http://a.example/"]
    for url in urls:
        canonical = normalize_url(url)
        assert wh.query(f"SELECT {host_sql('$u')}", {"u": canonical}).rows == [(host_key(canonical),)], url


def test_a_claim_holds_its_hosts_alone_list_pages_first(wh) -> None:
    _seed(wh, {"h1:1": 3, "h2:2": 2})
    [first] = _claim(wh, max_claims=1)
    assert first.hosts == ("h1:1", "h2:2")                       # small hosts share one claim
    urls = [i.url for i in first.items]                          # host by host, each one's list pages first
    assert urls[0] == "http://h1:1/list/1.html" and urls[4] == "http://h2:2/list/1.html"
    assert len(first.items) == 7
    # more due URLs on those hosts, free slots, another dispatcher: nothing, while the lease runs
    wh.add_frontier([frontier_row("http://h1:1/a/99.html"), frontier_row("http://h3:3/a/1.html")])
    [other] = _claim(wh, "run-2", at=T0 + timedelta(seconds=30))
    assert other.hosts == ("h3:3",)
    assert _claim(wh, "run-3", at=T0 + timedelta(seconds=59)) == []


def test_a_big_host_is_split_over_rounds_never_over_claims(wh) -> None:
    _seed(wh, {"big:1": 25, "small:2": 1})
    claims = _claim(wh, max_claims=3, claim_urls=10)
    assert [c.hosts for c in claims] == [("big:1",), ("small:2",)]   # one claim per host, capped at claim_urls
    assert len(claims[0].items) == 10
    assert _claim(wh, max_claims=3, claim_urls=10, at=T0 + timedelta(seconds=1)) == []


def test_max_claims_is_per_run(wh) -> None:
    _seed(wh, {f"h{n}:1": 1 for n in range(5)})
    assert len(_claim(wh, max_claims=2, claim_urls=2)) == 2
    assert _claim(wh, max_claims=2, claim_urls=2, at=T0 + timedelta(seconds=1)) == []   # both still open
    assert len(_claim(wh, "run-2", max_claims=2, claim_urls=2, at=T0 + timedelta(seconds=1))) == 2


def test_an_ended_lease_gives_every_unfetched_url_to_the_next_claim(wh) -> None:
    _seed(wh, {"h1:1": 4})
    [first] = _claim(wh)
    fetched = first.items[:2]                                    # the worker's first shard, loaded
    wh.record_fetches([fetch(i.url, fetched_at=T0 + timedelta(seconds=5)) for i in fetched], revisit_after=WEEK)
    assert _claim(wh, at=first.lease_until - timedelta(microseconds=1)) == []
    [second] = _claim(wh, at=first.lease_until)                  # the worker died: the lease ends, the rest is due
    assert [i.url for i in second.items] == [i.url for i in first.items[2:]]
    assert [(c.claim_id, c.status) for c in wh.claims(open_only=False)] == [
        (first.claim_id, "expired"), (second.claim_id, "open")]


def test_proofs_of_life_in_time_extend_the_lease_late_ones_do_not(wh) -> None:
    _seed(wh, {"h1:1": 1})
    [c] = _claim(wh)
    proof = T0 + timedelta(seconds=50)
    assert wh.renew_claim(c.claim_id, proof) == proof + LEASE
    assert wh.renew_claim(c.claim_id, T0 + timedelta(seconds=10)) == proof + LEASE   # never earlier
    assert _claim(wh, at=T0 + timedelta(seconds=100)) == []                           # still held
    late = proof + LEASE + timedelta(seconds=1)
    assert wh.renew_claim(c.claim_id, late) == proof + LEASE                          # after its end: no extension
    assert [x.hosts for x in _claim(wh, at=late)] == [("h1:1",)]                      # and the host is claimed again
    assert wh.renew_claim(c.claim_id, late) is None                                   # expired: not open any more


def test_a_worker_has_its_start_time_then_the_lease_between_two_proofs(wh) -> None:
    _seed(wh, {"h1:1": 1})
    [c] = wh.claim("run-1", "demo", max_claims=1, claim_urls=5, lease=timedelta(seconds=10),
                   start=timedelta(minutes=2), now=T0)
    assert c.lease_until == T0 + timedelta(minutes=2)                     # queued, starting: it has two minutes
    first = T0 + timedelta(seconds=90)
    assert wh.renew_claim(c.claim_id, first) == first + timedelta(seconds=10)   # started: the short lease applies
    assert wh.renew_claim(c.claim_id, first + timedelta(seconds=5)) == first + timedelta(seconds=15)
    assert [x.hosts for x in _claim(wh, at=first + timedelta(seconds=15))] == [("h1:1",)]   # silent 10 s: let go


def test_a_done_claim_frees_its_hosts_and_what_it_fetched_is_not_due(wh) -> None:
    _seed(wh, {"h1:1": 2})
    [c] = _claim(wh)
    wh.record_fetches([fetch(i.url, kind=i.kind, fetched_at=T0 + timedelta(seconds=1)) for i in c.items[:-1]],
                      revisit_after=WEEK)
    assert wh.close_claim(c.claim_id, now=T0 + timedelta(seconds=2))
    assert not wh.close_claim(c.claim_id, now=T0 + timedelta(seconds=2))          # once
    [again] = _claim(wh, at=T0 + timedelta(seconds=3))
    assert [i.url for i in again.items] == [c.items[-1].url]                       # only the one not fetched
    assert wh.query("SELECT count(*) FROM claimed_urls").rows == [(1,)]            # closed claims keep no URLs
    with pytest.raises(ValueError):
        wh.close_claim(again.claim_id, status="open")


# ---- one source, one fetching run: the single-machine path ------------------------------------------
def test_a_second_fetching_run_of_a_source_is_refused_naming_the_first(wh) -> None:
    first = wh.start_run("crawl", "demo", {}, exclusive=True)
    for kind in ("crawl", "backfill"):
        with pytest.raises(SourceBusy, match=rf"source 'demo' is being fetched by run {first} \(crawl, started .*"
                                             rf"process {os.getpid()} on .*this {kind} did not start") as refused:
            wh.start_run(kind, "demo", {}, exclusive=True)
        assert refused.value.holder == first
    wh.finish_run(wh.start_run("reextract", "demo", {}, exclusive=True), "completed", {})   # no network: allowed
    wh.finish_run(wh.start_run("crawl", "other", {}, exclusive=True), "completed", {})      # another source
    assert wh.query("SELECT count(*) FROM crawl_runs WHERE source_id = 'demo' AND kind = 'crawl'").rows == [(1,)]
    wh.finish_run(first, "completed", {})
    wh.finish_run(wh.start_run("crawl", "demo", {}, exclusive=True), "completed", {})       # free again


def test_a_dead_holder_does_not_block_but_its_open_claims_do(wh) -> None:
    code = ("import sys, os; from datetime import timedelta; from warehouse import Warehouse, FrontierRow; "
            "w = Warehouse(sys.argv[1]); run = w.start_run('crawl', 'demo', {}, exclusive=True); "
            "w.add_frontier([FrontierRow('http://h:1/a/1.html', 'demo', 'article')]); "
            "w.claim(run, 'demo', max_claims=1, claim_urls=5, lease=timedelta(seconds=float(sys.argv[2]))); "
            "print(run, flush=True); os._exit(9)")                     # a dispatcher killed with a claim out
    done = subprocess.run([sys.executable, "-c", code, str(wh.path), "600"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=60)
    dead = done.stdout.strip()
    assert done.returncode == 9, done.stderr
    with pytest.raises(SourceBusy, match=rf"1 open fleet claims of run {dead} .*leases until") as refused:
        wh.start_run("crawl", "demo", {}, exclusive=True)             # its worker may still be fetching
    assert refused.value.holder == dead
    assert wh.query("SELECT status FROM crawl_runs WHERE run_id = ?", [dead]).rows == [("crashed",)]
    [claim] = wh.claims()
    wh.expire_claims(now=claim.lease_until)
    wh.finish_run(wh.start_run("crawl", "demo", {}, exclusive=True), "completed", {})


def test_of_two_runs_started_at_once_exactly_one_starts(wh) -> None:
    code = ("import sys, time; from warehouse import Warehouse, SourceBusy; w = Warehouse(sys.argv[1])\n"
            "try:\n    print('started', w.start_run('crawl', 'demo', {}, exclusive=True), flush=True)\n"
            "except SourceBusy as e:\n    print('refused', e.holder, flush=True)\n"
            "time.sleep(3)\n")
    root = Path(__file__).resolve().parent.parent
    runs = [subprocess.Popen([sys.executable, "-c", code, str(wh.path)], stdout=subprocess.PIPE, text=True, cwd=root)
            for _ in range(2)]
    said = sorted(p.communicate(timeout=60)[0].split() for p in runs)
    assert [s[0] for s in said] == ["refused", "started"]
    assert said[0][1] == said[1][1]                                    # the refused one names the one that started


def test_a_claim_names_its_hosts_fresh_list_pages_so_pagination_skips_them(wh) -> None:
    wh.add_frontier([frontier_row("http://h1:1/list/1.html", kind="list"), frontier_row("http://h1:1/list/2.html", kind="list"),
                     frontier_row("http://h2:2/list/1.html", kind="list")])
    wh.record_fetches([fetch("http://h1:1/list/1.html", kind="list", fetched_at=T0),
                       fetch("http://h2:2/list/1.html", kind="list", fetched_at=T0)], revisit_after=WEEK)
    [claim] = _claim(wh, at=T0 + timedelta(minutes=1))
    assert [i.url for i in claim.items] == ["http://h1:1/list/2.html"]
    assert claim.skip == ("http://h1:1/list/1.html",)                # its own host's only
    assert claim.found_hosts == ("h1:1",) and claim.claim_urls == 100   # it knows all h1 URLs: fetches what it finds


def test_a_claim_names_every_known_url_of_a_host_it_can_and_says_which_hosts_those_are(wh, monkeypatch) -> None:
    """Found articles are fetched in the claim only where `skip` is whole: fresh, given-up and due-past-the-share
    URLs are all in it. A host with more known URLs than MAX_SKIP gets its fresh list pages alone, as before."""
    import warehouse.claims as claims

    monkeypatch.setattr(claims, "MAX_SKIP", 4)
    _seed(wh, {"small:1": 3, "big:2": 8})             # a list page and n articles each
    wh.record_fetches([fetch("http://small:1/a/0.html", fetched_at=T0), fetch("http://big:2/list/1.html",
                       kind="list", fetched_at=T0), fetch("http://big:2/a/0.html", fetched_at=T0)], revisit_after=WEEK)
    small, big = sorted(_claim(wh, at=T0 + timedelta(minutes=1), claim_urls=3), key=lambda c: c.hosts)[::-1]
    assert small.hosts == ("small:1",) and big.hosts == ("big:2",)
    assert [i.url for i in small.items] == ["http://small:1/list/1.html", "http://small:1/a/1.html",
                                            "http://small:1/a/2.html"]
    assert small.skip == ("http://small:1/a/0.html",) and small.found_hosts == ("small:1",)
    assert big.skip == ("http://big:2/list/1.html",) and big.found_hosts == ()   # 9 known, 3 given: 6 > 4


def test_hosts_spread_over_free_claims_before_they_share_one(wh) -> None:
    _seed(wh, {f"h{n}:1": 2 for n in range(5)})
    claims = _claim(wh, max_claims=3, claim_urls=10)
    assert [c.hosts for c in claims] == [("h0:1", "h3:1"), ("h1:1", "h4:1"), ("h2:1",)]
