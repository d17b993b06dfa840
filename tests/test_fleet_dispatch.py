"""The dispatcher and its workers without Prefect: workers are tasks of this process that run the real claim
stream (fetch, extract, shards), against two demo hosts on loopback. Every article is stored once, no page is
fetched twice, no host sees more than its per-host limit at once across workers, a claim whose worker never
writes is given to another after its lease, and a local crawl is refused while the fleet holds the source."""
from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

import pytest

from crawler import normalize_url
from flows.config import load_config
from flows.fleet import claim_from_parameters, claim_parameters, worker_config
from flows.pipeline import source_spec, stream_options
from pipeline.dispatch import Dispatcher, DispatchSettings
from pipeline.shard_run import ClaimRun
from pipeline.spec import StreamOptions
from warehouse import Claim, SourceBusy, Warehouse
from warehouse.shards import ShardStore

from .fleet_support import demo_hosts, fetched_by_claim, fleet_config
from .test_warehouse_support import dump

OPTIONS = StreamOptions(extract_here=True, commit_seconds=0.3, commit_rows=50)


class MuteStore(ShardStore):
    """Shared storage this worker stops reaching after its first window: later writes fail."""

    def write(self, shard):
        if shard.part not in ("00000", "00001"):
            raise OSError("shared storage unreachable")
        return super().write(shard)


class Fleet:
    """In-process workers: `launch` starts the claim's stream as a task; `dead` claims are never worked,
    `mute` claims stop landing shards after their first window."""

    def __init__(self, config_path: Path, *, dead: int = 0, mute: tuple[int, ...] = ()) -> None:
        self.cfg = load_config(config_path)
        self.store = ShardStore(self.cfg.fleet.shards)
        self.tasks: list[asyncio.Task] = []
        self.claims: list[Claim] = []
        self.dead_left = dead
        self.mute = mute          # which launches (1, 2, ...) get a MuteStore
        self.muted: list[Claim] = []
        self.numbers = itertools.count(1)
        self.runs: list[ClaimRun] = []

    async def launch(self, claim: Claim) -> str:
        claim = claim_from_parameters(claim_parameters(claim))    # what crosses to a worker, as JSON would
        self.claims.append(claim)
        if self.dead_left:
            self.dead_left -= 1
            return f"dead-{next(self.numbers)}"
        number, store = next(self.numbers), self.store
        if number in self.mute:
            self.muted.append(claim)
            store = MuteStore(self.cfg.fleet.shards)
        self.tasks.append(asyncio.ensure_future(self._work(claim, store)))
        return f"task-{number}"

    async def _work(self, claim: Claim, store: ShardStore) -> None:
        from flows.config import Config

        cfg = Config.model_validate(worker_config(self.cfg, claim.source_id))   # a worker sees only this
        run = ClaimRun(source_spec(cfg, claim.source_id), claim, store, options=OPTIONS)
        self.runs.append(run)
        try:
            async with run:
                await run.crawl_claim()
        except OSError:
            if not isinstance(store, MuteStore):
                raise

    def dispatcher(self, **settings) -> Dispatcher:
        fleet = self.cfg.fleet
        base = dict(claim_urls=fleet.claim_urls, max_claims=fleet.max_claims, lease_s=fleet.lease_seconds,
                    start_s=fleet.start_seconds, poll_s=fleet.poll_seconds)
        return Dispatcher(source_spec(self.cfg, "demo"), self.cfg.warehouse.path, self.store, self.launch,
                          settings=DispatchSettings(**{**base, **settings}), options=stream_options(self.cfg, OPTIONS))

    async def crawl(self, **settings) -> Dispatcher:
        dispatcher = self.dispatcher(**settings)
        await dispatcher.run()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 60)   # a worker that never stops fails the test
        return dispatcher


def _stored(path: Path) -> list[str]:
    wh = Warehouse(path)
    return [u for (u,) in wh.query("SELECT url FROM articles ORDER BY url").rows]


def test_the_workers_lease_clock_never_ends_later_than_the_warehouses(tmp_path) -> None:
    """Random proofs of life, some late: after each, the worker's deadline is before the dispatcher's lease end."""
    import random

    from pipeline.shard_run import LeaseClock
    from warehouse import FrontierRow

    from .test_warehouse_support import T0

    wh = Warehouse(tmp_path / "w.duckdb", hold_s=5.0)   # the file stays open between the many small writes
    rng = random.Random(5)
    for n in range(12):
        wh.add_frontier([FrontierRow(f"http://h{n}:1/a.html", "demo", "article")])
        lease, start = rng.choice([5.0, 20.0, 60.0]), rng.choice([10.0, 120.0])
        [claim] = wh.claim(f"run-{n}", "demo", max_claims=1, claim_urls=1, lease=timedelta(seconds=lease),
                           start=timedelta(seconds=start), now=T0)
        clock, at = LeaseClock(claim.lease_until, claim.lease_s), T0
        for _ in range(8):
            at += timedelta(seconds=rng.uniform(0, lease * 1.3 if clock.started else start * 1.1))
            clock.proof(at)
            until = wh.renew_claim(claim.claim_id, at)
            if until is None:
                break
            assert clock.deadline < until
        wh.expire_claims(now=T0 + timedelta(days=1))
    wh.release()


def test_two_hosts_two_claims_at_a_time_every_article_once(tmp_path) -> None:
    with demo_hosts(2, 24, latency_s=0.15) as hosts:   # slow pages: workers on one host would overlap
        # more claim slots than hosts: only host exclusivity keeps a second claim off a host being fetched
        fleet = Fleet(fleet_config(tmp_path, hosts, per_host=2, fleet={"max_claims": 3}))
        dispatcher = asyncio.run(fleet.crawl())
        stored = _stored(fleet.cfg.warehouse.path)
        assert len(stored) == len(set(stored)) and set(stored) == hosts.article_urls()
        assert hosts.fetched_twice() == {}
        assert max(hosts.max_in_flight()) <= 2                  # per host, across every claim's worker
        assert min(hosts.max_in_flight()) == 2                  # the limit was reached: the check could fail
    # several claims per host (24 articles, 10 URLs a claim), never two at once on one host
    by_host = {h: [c for c in fleet.claims if h in c.hosts] for h in {h for c in fleet.claims for h in c.hosts}}
    assert all(len(claims) >= 3 for claims in by_host.values())
    # a claim fetches at most its 10 URLs, the articles it finds included (and the pagination it follows)
    assert all(len([u for u in urls if "/news/" in u]) <= 10 for urls in fetched_by_claim(fleet.store.base).values())
    wh = Warehouse(fleet.cfg.warehouse.path)
    statuses = wh.query("SELECT status, count(*) FROM claims GROUP BY ALL").rows
    assert statuses == [("done", len(fleet.claims))]
    summary = dispatcher.summary
    assert summary.status == "completed" and summary.articles_new == 48
    assert summary.failures == {"robots": 2}                 # each host's /news/20230430/0.html, on purpose
    row = wh.query("SELECT kind, status, json_extract(counts, '$.articles_new')::INT FROM crawl_runs "
                   "WHERE run_id = ?", [summary.run_id]).rows
    assert row == [("crawl", "completed", 48)]
    assert list(Path(fleet.store.base, "incoming").rglob("manifest.json")) == []   # every part loaded and moved


def test_a_claim_whose_worker_never_writes_is_worked_by_another_after_its_lease(tmp_path) -> None:
    with demo_hosts(2, 12) as hosts:
        fleet = Fleet(fleet_config(tmp_path, hosts, fleet={"lease_seconds": 5, "start_seconds": 5}), dead=1)
        asyncio.run(fleet.crawl())
        assert set(_stored(fleet.cfg.warehouse.path)) == hosts.article_urls()
        assert hosts.fetched_twice() == {}
    wh = Warehouse(fleet.cfg.warehouse.path)
    first = fleet.claims[0]
    assert wh.query("SELECT status FROM claims WHERE claim_id = ?", [first.claim_id]).rows == [("expired",)]
    again = [c for c in fleet.claims[1:] if set(c.hosts) & set(first.hosts)]
    assert again and {i.url for i in first.items} <= {i.url for c in again for i in c.items}   # nothing lost


@pytest.mark.parametrize(("mute", "claim_urls"), [(1, 30), (3, 12)], ids=["first-claim", "articles-claim"])
def test_a_worker_whose_shards_stop_landing_stops_at_its_lease_and_another_finishes(tmp_path, mute, claim_urls) -> None:
    with demo_hosts(2, 20, latency_s=0.1) as hosts:
        # claim 1 holds a host's first list page (its pagination and the articles found are fetched in it);
        # with 12 URLs a claim, a host needs a second one: claim 3 holds a host's remaining articles
        fleet = Fleet(fleet_config(tmp_path, hosts, fleet={"lease_seconds": 5, "claim_urls": claim_urls},
                                   commit_seconds=0.2), mute=(mute,))
        asyncio.run(fleet.crawl())
        assert set(_stored(fleet.cfg.warehouse.path)) == hosts.article_urls()      # nothing lost
        [muted] = fleet.muted
        mute_run = next(r for r in fleet.runs if r.claim.claim_id == muted.claim_id)
        assert mute_run._lease_stop                              # it stopped at its own deadline, then failed
        # Pages fetched twice: only what the muted worker fetched after its last part that landed.
        wh = Warehouse(fleet.cfg.warehouse.path)
        landed = {u for (u,) in wh.query("SELECT url FROM fetches f JOIN shard_loads s ON s.claim_id = ? "
                                         "AND s.shard_id LIKE '%/00001' AND f.fetched_at <= s.written_at",
                                         [muted.claim_id]).rows}
        twice = {normalize_url(u) for u in hosts.fetched_twice()}
        assert landed and not twice & landed
        assert max(hosts.max_in_flight()) <= 2                   # the stopped worker and its successor never overlapped
        assert wh.query("SELECT status FROM claims WHERE claim_id = ?", [muted.claim_id]).rows == [("expired",)]


def test_a_local_crawl_is_refused_while_the_fleet_holds_the_source(tmp_path) -> None:
    with demo_hosts(1, 12, latency_s=0.05) as hosts:
        fleet = Fleet(fleet_config(tmp_path, hosts))

        async def both() -> str:
            crawl = asyncio.ensure_future(fleet.crawl())
            while not fleet.claims:
                await asyncio.sleep(0.05)
            wh = Warehouse(fleet.cfg.warehouse.path)
            with pytest.raises(SourceBusy) as refused:
                await asyncio.to_thread(wh.start_run, "crawl", "demo", {}, exclusive=True)
            dispatcher = await crawl
            assert refused.value.holder == dispatcher.run_id
            return str(refused.value)

        message = asyncio.run(both())
        assert "is being fetched by run" in message and "did not start and fetched nothing" in message
        assert hosts.fetched_twice() == {}


def test_loading_the_fleets_shards_again_adds_nothing(tmp_path) -> None:
    import shutil

    from pipeline.dispatch import load_pass

    with demo_hosts(1, 12) as hosts:
        fleet = Fleet(fleet_config(tmp_path, hosts))
        asyncio.run(fleet.crawl())
    before = dump(fleet.cfg.warehouse.path)
    shutil.copytree(Path(fleet.store.base, "loaded"), Path(fleet.store.base, "incoming"), dirs_exist_ok=True)
    again = load_pass(fleet.cfg.warehouse.path, fleet.store)
    assert again["loaded"] == 0 and again["already"] > 3
    assert dump(fleet.cfg.warehouse.path) == before


def test_one_claim_per_host_fetches_the_articles_it_finds_and_a_recrawl_refetches_none(tmp_path) -> None:
    with demo_hosts(2, 20, latency_s=0.05) as hosts:
        fleet = Fleet(fleet_config(tmp_path, hosts, fleet={"claim_urls": 100}))
        asyncio.run(fleet.crawl())
        assert set(_stored(fleet.cfg.warehouse.path)) == hosts.article_urls()
        assert hosts.fetched_twice() == {}
        # one claim per host did the whole host: its list pages, then the articles they revealed
        assert sorted(len(c.hosts) for c in fleet.claims) == [1, 1]
        fetched = fetched_by_claim(fleet.store.base)
        for claim in fleet.claims:
            assert {u for u in fetched[claim.claim_id] if "/news/" in u} >= {
                u for u in hosts.article_urls() if u.split("/")[2] in claim.hosts}
        wh = Warehouse(fleet.cfg.warehouse.path)
        assert wh.query("SELECT count(*) FROM frontier WHERE kind = 'article' AND discovered_from IS NULL").rows == [(0,)]
        # again: the list pages are due, every article is fresh; the claim names them, its worker fetches none
        again = Fleet(fleet_config(tmp_path, hosts, fleet={"claim_urls": 100}))
        asyncio.run(again.crawl())
        assert not [u for u in hosts.fetched_twice() if "/news/" in u]
        assert {u for c in again.claims for u in c.skip} >= hosts.article_urls()
        assert sorted(set(c.found_hosts) == set(c.hosts) for c in again.claims) == [True, True]
