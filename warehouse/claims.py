"""Claims: the dispatcher's hold on due URLs, host by host, for the crawl workers of a fleet.

The rules (all state lives here, so a dispatcher that restarts picks up where the last one stopped):
- a claim takes due URLs of one source (frontier.due's rules: list pages first, then discovery order),
  up to `claim_urls` per host, only from hosts that no open claim holds. A host is then fetched by one
  worker at a time, and the crawler's per-host concurrency and delay hold across the whole fleet.
  Hosts spread over the free claims first; past that, small hosts share a claim (a worker run costs
  seconds to start), up to `claim_urls` URLs; one host never spans two claims;
- a claim also names the URLs of its hosts the warehouse knows and did not give it (`skip`: fresh, given up
  on, due past its share). The worker follows pagination on its hosts, as a local crawl does, and fetches
  the articles it finds there (`found_hosts`, up to `claim_urls` fetches in all), but never a URL in `skip`:
  one claim usually does a whole host. A host whose known URLs do not fit (MAX_SKIP a claim) is named by its
  fresh list pages alone, and its found articles wait in the warehouse for the next claim, as before;
- a claim is open until its lease ends (`lease_until`) or the loader applies its worker's last shard
  (`done`); while it is open, its hosts and URLs are claimed by nothing else;
- a new claim's lease gives its worker `start_s` to start (queued in a work pool, a container pulled);
  from its first proof of life on, the lease ends `lease_s` after the latest proof written in time (a
  shard whose `written_at` is before the lease's end). The worker computes the same deadline from the
  same numbers and starts no request after it, so an expired claim's worker and the next one's never
  overlap;
- an open claim past its lease expires: the URLs its worker did not get to (as loaded) are still due and
  the next claim takes them. Nothing is lost, because a URL leaves the due set only when a loaded shard
  records its fetch.
Claims are made inside one transaction of the single writer: two dispatchers never claim one URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from .batches import arrow_table, forget, utc
from .frontier import _LIVE, HOST_FAILURES, LIST_KINDS
from .rows import FrontierItem

CLAIM_STATUSES: tuple[str, ...] = ("open", "done", "expired")
MAX_SKIP = 2_000  # fresh list pages named per claim, at most (a parameter of the worker's run)
# host[:port] of a canonical URL (userinfo dropped, as the crawler's host_key): the unit of politeness.
HOST_SQL = "lower(regexp_extract({col}, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#]+)', 1))"


def host_sql(col: str = "url") -> str:
    return HOST_SQL.format(col=col)


@dataclass(frozen=True)
class Claim:
    """Due URLs handed to one worker: every URL of `hosts` it may fetch until `lease_until` (extended by
    each shard it writes in time)."""

    claim_id: str
    run_id: str
    source_id: str
    hosts: tuple[str, ...]
    lease_until: datetime
    lease_s: float
    items: tuple[FrontierItem, ...] = field(default=(), repr=False)
    # URLs of its hosts the warehouse knows but did not give it (fresh, given up on, due past its share): what
    # the worker finds there it never fetches. On a host not in `found_hosts`, only its fresh list pages.
    skip: tuple[str, ...] = field(default=(), repr=False)
    # Hosts whose known URLs `skip` names whole: there the worker also fetches the articles it finds.
    found_hosts: tuple[str, ...] = ()
    claim_urls: int = 0  # the most URLs the worker fetches for this claim, found articles included
    status: str = "open"
    worker: str | None = None
    created_at: datetime | None = None


def expire(con: duckdb.DuckDBPyConnection, now: datetime) -> list[str]:
    """Close as `expired` every open claim whose lease has ended; returns their ids."""
    ids = [
        r[0]
        for r in con.execute(
            "SELECT claim_id FROM claims WHERE status = 'open' AND lease_until <= $now ORDER BY claim_id",
            {"now": utc(now)},
        ).fetchall()
    ]
    if ids:
        con.execute(
            "UPDATE claims SET status = 'expired', closed_at = $now WHERE list_contains($ids, claim_id)",
            {"now": utc(now), "ids": ids},
        )
        con.execute("DELETE FROM claimed_urls WHERE list_contains($ids, claim_id)", {"ids": ids})
    return ids


def claim(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    source_id: str,
    now: datetime,
    *,
    max_claims: int,
    claim_urls: int,
    lease_s: float,
    max_failures: int,
    kinds: Sequence[str] | None = None,
    start_s: float | None = None,
) -> list[Claim]:
    """New claims for `run_id` on the source's due URLs (rules in the module docstring), as many as keep
    the run's open claims at `max_claims`. Expires ended leases first. Call inside a transaction."""
    expire(con, now)
    open_now = con.execute("SELECT count(*) FROM claims WHERE status = 'open' AND run_id = ?", [run_id]).fetchall()[0][
        0
    ]
    free = max_claims - int(open_now)
    if free <= 0 or claim_urls <= 0:
        return []
    params = {
        "source": source_id,
        "now": utc(now),
        "max_failures": max_failures,
        "host_failures": list(HOST_FAILURES),
        "kinds": None if kinds is None else list(kinds),
        "list_kinds": list(LIST_KINDS),
        "per_host": claim_urls,
    }
    due = f"""
        WITH held AS (SELECT DISTINCT unnest(hosts) AS host FROM claims WHERE status = 'open'),
        due AS (
            SELECT url, source_id, kind, etag, last_modified, attempts, url_key, {host_sql("url")} AS host,
                   CASE WHEN list_contains($list_kinds, kind) THEN 0 ELSE 1 END AS lane, seq
            FROM frontier
            WHERE source_id = $source
              AND (next_fetch_at IS NULL OR next_fetch_at <= $now)
              AND {_LIVE}
              AND ($kinds IS NULL OR list_contains($kinds, kind))
        ),
        free AS (SELECT d.* FROM due d ANTI JOIN held h USING (host) ANTI JOIN claimed_urls c USING (url_key))
    """
    # Hosts first (in the order of their first due URL, list pages before articles), packed whole: at most
    # `free * claim_urls` hosts can fit, each with at least one URL.
    hosts = con.execute(
        due
        + """
        SELECT host, least(count(*), $per_host) AS n FROM free GROUP BY host
        ORDER BY min(lane), min(CASE WHEN lane = 0 THEN seq END) NULLS LAST, min(seq), host
        LIMIT $max_hosts
        """,
        {**params, "max_hosts": free * claim_urls},
    ).fetchall()
    # A host goes whole into one claim: its own while slots are free (hosts spread over workers), then the
    # least loaded claim it fits in; a host that fits nowhere waits for the next round.
    packs: list[list[str]] = []
    sizes: list[int] = []
    for host, n in hosts:
        slot: int | None
        if len(packs) < free:
            packs.append([])
            sizes.append(0)
            slot = len(packs) - 1
        else:
            slot = min(
                (k for k, size in enumerate(sizes) if size + n <= claim_urls), key=sizes.__getitem__, default=None
            )
            if slot is None:
                continue
        packs[slot].append(host)
        sizes[slot] += n
    if not packs:
        return []
    rows = con.execute(
        due
        + """
        SELECT url, source_id, kind, etag, last_modified, attempts, host FROM free
        WHERE list_contains($chosen, host)
        QUALIFY row_number() OVER (PARTITION BY host ORDER BY lane, seq) <= $per_host
        ORDER BY lane, seq
        """,
        {**params, "chosen": [h for pack in packs for h in pack]},
    ).fetchall()
    by_host: dict[str, list[FrontierItem]] = {}
    for url, source, kind, etag, last_modified, attempts, host in rows:
        by_host.setdefault(host, []).append(FrontierItem(url, source, kind, etag, last_modified, attempts))
    skip, found_hosts = _known(con, source_id, now, packs, by_host)
    lease_until = utc(now) + timedelta(seconds=lease_s if start_s is None else start_s)
    claims = [
        Claim(
            claim_id=f"{utc(now):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:10]}",
            run_id=run_id,
            source_id=source_id,
            hosts=tuple(pack),
            lease_until=lease_until,
            lease_s=float(lease_s),
            items=tuple(i for host in pack for i in by_host[host]),
            created_at=utc(now),
            skip=tuple(u for host in pack for u in skip.get(host, ())),
            found_hosts=tuple(h for h in pack if h in found_hosts),
            claim_urls=claim_urls,
        )
        for pack in packs
    ]
    _insert(con, claims, by_host)
    return claims


def _known(
    con: duckdb.DuckDBPyConnection,
    source_id: str,
    now: datetime,
    packs: list[list[str]],
    by_host: dict[str, list[FrontierItem]],
) -> tuple[dict[str, list[str]], set[str]]:
    """What each claim's worker must not fetch from what it finds: per host, the URLs the warehouse knows
    that are not in the claim (fresh, given up on, or due past the claim's share), and the hosts whose
    every such URL fits in the claim's MAX_SKIP (on those, and only those, the worker fetches the articles
    it finds). A host too big to name whole gets its fresh list pages alone, for pagination, as before."""
    chosen = [h for pack in packs for h in pack]
    hosts_sql = f"""
        WITH k AS (SELECT url, kind, next_fetch_at, {host_sql("url")} AS host FROM frontier WHERE source_id = $source)
        SELECT * FROM k WHERE list_contains($chosen, host)
    """
    known = dict(
        con.execute(
            f"SELECT host, count(*) FROM ({hosts_sql}) GROUP BY host", {"source": source_id, "chosen": chosen}
        ).fetchall()
    )
    whole: set[str] = set()
    lists_room: list[int] = []  # per claim, what its whole hosts left for its big hosts' fresh list pages
    for pack in packs:
        left = MAX_SKIP
        for host in pack:
            others = known.get(host, 0) - len(by_host[host])
            if others <= left:
                whole.add(host)
                left -= others
        lists_room.append(left)
    found: dict[str, list[str]] = {}
    for url, host in con.execute(
        f"""
        SELECT url, host FROM ({hosts_sql})
        WHERE list_contains($whole, host) OR (list_contains($list_kinds, kind) AND next_fetch_at > $now)
        QUALIFY list_contains($whole, host) OR row_number() OVER (PARTITION BY host ORDER BY url) <= $cap
        ORDER BY host, url
        """,
        {
            "source": source_id,
            "chosen": chosen,
            "list_kinds": list(LIST_KINDS),
            "now": utc(now),
            "whole": sorted(whole),
            "cap": MAX_SKIP + max((len(items) for items in by_host.values()), default=0),
        },
    ).fetchall():
        found.setdefault(host, []).append(url)
    skip: dict[str, list[str]] = {}
    for pack, left in zip(packs, lists_room, strict=True):
        for host in pack:
            given = {i.url for i in by_host[host]}
            urls = [u for u in found.get(host, ()) if u not in given]
            if host not in whole:
                urls = urls[:left]
                left -= len(urls)
            skip[host] = urls
    return skip, whole


def _insert(con: duckdb.DuckDBPyConnection, claims: list[Claim], by_host: dict[str, list[FrontierItem]]) -> None:
    con.register(
        "_claims",
        arrow_table(
            {
                "claim_id": (pa.string(), [c.claim_id for c in claims]),
                "run_id": (pa.string(), [c.run_id for c in claims]),
                "source_id": (pa.string(), [c.source_id for c in claims]),
                "hosts": (pa.list_(pa.string()), [list(c.hosts) for c in claims]),
                "urls": (pa.int32(), [len(c.items) for c in claims]),
            }
        ),
    )
    urls = [(c.claim_id, host, item.url) for c in claims for host in c.hosts for item in by_host[host]]
    con.register(
        "_claimed",
        arrow_table(
            {
                "claim_id": (pa.string(), [u[0] for u in urls]),
                "host": (pa.string(), [u[1] for u in urls]),
                "url": (pa.string(), [u[2] for u in urls]),
            }
        ),
    )
    try:
        first = claims[0]
        con.execute(
            "INSERT INTO claims (claim_id, run_id, source_id, hosts, urls, status, created_at, lease_s, lease_until) "
            "SELECT claim_id, run_id, source_id, hosts, urls, 'open', $now, $lease_s, $until FROM _claims",
            {"now": first.created_at, "lease_s": first.lease_s, "until": first.lease_until},
        )
        con.execute(
            "INSERT INTO claimed_urls (url_key, url, claim_id, host) "
            "SELECT md5_number(url), url, claim_id, host FROM _claimed"
        )
    finally:
        forget(con, "_claims", "_claimed")


def renew(con: duckdb.DuckDBPyConnection, claim_id: str, proof_at: datetime) -> datetime | None:
    """A proof of life written at `proof_at`: if it came before the lease's end, the lease now ends
    `lease_s` after it (the first proof replaces the start time; later ones never shorten the lease).
    Returns the lease's end, None if the claim is not open. `LeaseClock` (pipeline) is the worker's copy."""
    row = con.execute(
        """
        UPDATE claims SET lease_until = CASE WHEN started_at IS NULL THEN $at + to_seconds(lease_s)
                                             ELSE greatest(lease_until, $at + to_seconds(lease_s)) END,
                          started_at = coalesce(started_at, $at)
        WHERE claim_id = $id AND status = 'open' AND $at < lease_until
        RETURNING lease_until
        """,
        {"id": claim_id, "at": utc(proof_at)},
    ).fetchall()
    if row:
        return row[0][0]
    open_row = con.execute(
        "SELECT lease_until FROM claims WHERE claim_id = ? AND status = 'open'", [claim_id]
    ).fetchall()
    return open_row[0][0] if open_row else None


def close(con: duckdb.DuckDBPyConnection, claim_id: str, now: datetime, status: str = "done") -> bool:
    """Close an open claim (`done`: its worker's last shard is loaded); its hosts are free again."""
    if status not in CLAIM_STATUSES or status == "open":
        raise ValueError(f"a claim closes as done or expired, not {status!r}")
    closed = con.execute(
        "UPDATE claims SET status = $status, closed_at = $now WHERE claim_id = $id AND status = 'open'",
        {"status": status, "now": utc(now), "id": claim_id},
    ).fetchall()[0][0]
    con.execute("DELETE FROM claimed_urls WHERE claim_id = ?", [claim_id])
    return bool(closed)


def set_worker(con: duckdb.DuckDBPyConnection, claim_id: str, worker: str) -> None:
    con.execute("UPDATE claims SET worker = ? WHERE claim_id = ?", [worker, claim_id])


def read(
    con: duckdb.DuckDBPyConnection, *, source_id: str | None = None, run_id: str | None = None, open_only: bool = True
) -> list[Claim]:
    """Claims (without their URLs), oldest first."""
    rows = con.execute(
        """
        SELECT claim_id, run_id, source_id, hosts, lease_until, lease_s, status, worker, created_at FROM claims
        WHERE ($source IS NULL OR source_id = $source) AND ($run IS NULL OR run_id = $run)
          AND (NOT $open_only OR status = 'open')
        ORDER BY created_at, claim_id
        """,
        {"source": source_id, "run": run_id, "open_only": open_only},
    ).fetchall()
    return [
        Claim(
            claim_id=c,
            run_id=r,
            source_id=s,
            hosts=tuple(h),
            lease_until=lu,
            lease_s=ls,
            status=st,
            worker=w,
            created_at=ca,
        )
        for c, r, s, h, lu, ls, st, w, ca in rows
    ]
