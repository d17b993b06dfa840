"""The fleet, planned past this machine: pages/s with 1, 2 and 4 worker processes on high-latency loopback hosts
(I/O-bound, so two cores do not cap it), and the loader's rows/s.

    python -m bench.fleet [--quick] [--hosts 8] [--articles 400] [--claim-urls 500] [--latency-ms 200] [--per-host 4] [--workers 1,2,4]
                          [--rounds 2] [--loader-shards 40] [--report-only]

What runs, all real: a `prefect server start` of its own; `--hosts` demo sites (`python -m demo --latency-ms`,
one process and port each: one host each for politeness); a process work pool with `sieve fleet deploy`;
for each measurement W fresh `prefect worker start --limit 1` processes (started, and online, before the clock
starts) and one `sieve fleet crawl demo` (the user's path: dispatcher, claims, a flow run per claim, shards,
loader) into a fresh warehouse. Measurements interleave (1, 2, 4, 4, 2, 1, ...), so ratios compare runs under
the same load. pages/s = fetches stored / wall time of `sieve fleet crawl`. CPU is summed over the worker
process trees (the claim runs and their extraction processes) and the dispatcher.

The loader alone: `--loader-shards` synthetic shards (a window each: fetches with HTML, articles, links) on a
folder, loaded by `pipeline.dispatch.load_pass` into a warehouse that already holds the crawl's rows.

Writes bench/out/fleet.json and its section of BENCHMARKS.md (between the fleet markers; the rest stays).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import yaml

from bench.common import PYTHON, ROOT, DemoServerProcess, median, quiet_env, read_json, table, write_json

REPORT = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- fleet: begin (python -m bench.fleet) -->", "<!-- fleet: end -->"


def _config(folder: Path, hosts: list[DemoServerProcess], pool: str, workers: int, per_host: int,
            claim_urls: int) -> Path:
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["warehouse"]["path"] = str(folder / "sieve.duckdb")
    config["crawl"].update({"delay_seconds": 0.0, "retries": 1, "timeout_seconds": 30})
    demo = config["sources"]["demo"]
    demo["start_urls"] = [f"{h.base_url}/list/1.html" for h in hosts]
    demo["crawl"] = {"delay_seconds": 0.0, "per_host_concurrency": per_host}
    config["pipeline"] = {"extract_workers": 1, "commit_seconds": 1.0}
    config["fleet"] = {"shards": str(folder / "shards"), "work_pool": pool, "claim_urls": claim_urls, "max_claims": workers,
                       "lease_seconds": 120, "start_seconds": 600, "poll_seconds": 1.0}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class Workers:
    """W `prefect worker start --limit 1` processes on one pool, each in its own session."""

    def __init__(self, n: int, pool: str, env: dict[str, str], home: Path) -> None:
        self.procs = []
        for i in range(n):
            log = open(home / f"worker-{i}.log", "ab")
            self.procs.append(subprocess.Popen(
                [PYTHON, "-m", "prefect", "worker", "start", "--pool", pool, "--limit", "1", "--name", f"bench-{n}-{i}"],
                env={**env, "PREFECT_HOME": str(home / f"w{i}")}, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True))

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.procs:
            try:
                tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for p in tree:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
                except psutil.NoSuchProcess:
                    pass
        return total

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _online(api_url: str, pool: str, n: int, timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = httpx.post(f"{api_url}/work_pools/{pool}/workers/filter", json={}, timeout=10)
        online = [w for w in r.json() if w.get("status") == "ONLINE"]
        if len(online) >= n:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{n} workers not online in {timeout_s:.0f} s")


def _cpu_of_tree(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(workers: int, hosts: list[DemoServerProcess], pool: str, api_url: str, env: dict[str, str],
            per_host: int, claim_urls: int, scratch: Path) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"w{workers}-", dir=scratch))
    config = _config(folder, hosts, pool, workers, per_host, claim_urls)
    fleet = Workers(workers, pool, env, folder)
    try:
        _online(api_url, pool, workers)
        time.sleep(2)     # every worker has polled once
        cpu0 = fleet.cpu_seconds()
        load0 = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.Popen([PYTHON, "-m", "flows.cli", "fleet", "crawl", "demo", "--config", str(config), "-q"],
                                env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ps = psutil.Process(proc.pid)
        dispatcher_cpu = 0.0
        while proc.poll() is None:
            try:
                dispatcher_cpu = max(dispatcher_cpu, _cpu_of_tree(ps))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.5)
        out, err = proc.communicate()
        wall = time.perf_counter() - started
        worker_cpu = fleet.cpu_seconds() - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"sieve fleet crawl exited {proc.returncode}: {err[-3000:]}")
    finally:
        fleet.stop()
    import duckdb

    con = duckdb.connect(str(folder / "sieve.duckdb"), read_only=True)
    fetches, ok = con.execute("SELECT count(*), count(*) FILTER (WHERE error IS NULL) FROM fetches").fetchall()[0]
    articles = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    claims, start_s = con.execute(
        "SELECT count(*), median(epoch(started_at) - epoch(created_at)) FROM claims").fetchall()[0]
    twice = con.execute("SELECT count(*) FROM (SELECT url FROM fetches WHERE url NOT LIKE '%robots.txt' "
                        "GROUP BY url HAVING count(*) > 1)").fetchall()[0][0]
    con.close()
    shutil.rmtree(folder / "shards", ignore_errors=True)
    return {"workers": workers, "wall_s": round(wall, 2), "fetches": fetches, "ok": ok, "articles": articles,
            "pages_per_s": round(fetches / wall, 2), "claims": claims, "claim_start_s": round(start_s or 0.0, 2),
            "fetched_twice": twice, "worker_cpu_s": round(worker_cpu, 1), "dispatcher_cpu_s": round(dispatcher_cpu, 1),
            "cpu_ms_per_page": round(1000 * (worker_cpu + dispatcher_cpu) / max(fetches, 1), 1),
            "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2), "folder": str(folder)}


def loader(scratch: Path, shards: int, pages: int) -> dict[str, Any]:
    """Synthetic shards of `pages` pages each (a fetch with ~20 KB of HTML, its ~3 KB article, one link), loaded."""
    from pipeline.dispatch import load_pass
    from warehouse import ArticleRow, FetchRow, FrontierRow, Warehouse
    from warehouse.shards import Shard, ShardStore, window_part

    folder = Path(tempfile.mkdtemp(prefix="loader-", dir=scratch))
    wh = Warehouse(folder / "sieve.duckdb")
    wh.migrate()
    wh.add_frontier([FrontierRow("http://bench.example/list/1.html", "demo", "list")])
    [claim] = wh.claim("bench", "demo", max_claims=1, claim_urls=10, lease=timedelta(hours=1))
    wh.release()
    store = ShardStore(str(folder / "shards"))
    rng = random.Random(3)
    now = datetime.now(UTC)
    rows = 0
    for s in range(shards):
        fetches, articles, links = [], [], []
        for p in range(pages):
            n = s * pages + p
            url = f"http://bench.example/news/{n}.html"
            text = "".join(rng.choice("城市职场读书创业生活的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理世车")
                       for _ in range(900))
            fetches.append(FetchRow(run_id="bench", source_id="demo", url=url, kind="article", final_url=url, status=200,
                                    error=None, detail="", content_type="text/html; charset=utf-8", nbytes=20_000,
                                    elapsed_ms=200, encoding="utf-8", replaced=False, attempts=1, etag=None,
                                    last_modified=None, fetched_at=now + timedelta(microseconds=n),
                                    html=f"<html><body>{text * 7}</body></html>"))
            articles.append(ArticleRow(article_id=f"a{n:09d}", source_id="demo", url=url, title=f"标题 {n}", author=None,
                                       account=None, published_at=None, text=text, content_hash=f"{n:064x}",
                                       simhash=rng.getrandbits(64), flags="", extractor_version="bench",
                                       rules_version="bench", extracted_at=now))
            links.append(FrontierRow(f"http://bench.example/news/{n + pages * shards}.html", "demo", "article", url))
        shard = Shard(source_id="demo", claim_id=claim.claim_id, part=window_part(s + 1), written_at=now,
                      run_id="bench", fetches=fetches, discovered=links, articles=articles)
        store.write(shard)
        rows += shard.rows
    started = time.perf_counter()
    result = load_pass(folder / "sieve.duckdb", store, clean_after=None)
    seconds = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    assert result["loaded"] == shards, result
    return {"shards": shards, "pages_per_shard": pages, "rows": rows, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds), "pages_per_s": round(shards * pages / seconds),
            "load_average": round(os.getloadavg()[0], 2)}


def render(payload: dict[str, Any]) -> str:
    runs = payload["runs"]
    by_w: dict[int, list[dict]] = {}
    for r in runs:
        by_w.setdefault(r["workers"], []).append(r)
    base = median([r["pages_per_s"] for r in by_w.get(min(by_w), [])])
    rows = []
    for w, rs in sorted(by_w.items()):
        pps = median([r["pages_per_s"] for r in rs])
        rows.append([w, len(rs), f"{pps:.1f}", f"{pps / base:.2f}x" if base else "", f"{median([r['wall_s'] for r in rs]):.0f}",
                     median([r["claims"] for r in rs]), f"{median([r['claim_start_s'] for r in rs]):.1f}",
                     f"{median([r['cpu_ms_per_page'] for r in rs]):.0f}", sum(r["fetched_twice"] for r in rs),
                     ", ".join(f"{r['load_before']:.1f}" for r in rs)])
    p = payload["params"]
    ceiling = p["hosts"] * p["per_host"] / (p["latency_ms"] / 1000)
    load = payload["loader"]
    top = max(by_w)
    per_worker = median([r["pages_per_s"] for r in by_w[top]]) / top
    cpu_ms = median([r["cpu_ms_per_page"] for r in runs])
    text = [
        f"Command: `{payload['command']}` (code {payload['machine'].get('git')}, {payload['machine'].get('measured_at')}). "
        f"{p['hosts']} demo hosts (`python -m demo --latency-ms {p['latency_ms']:g} --articles {p['articles']}`, one process "
        f"and port each), per-host concurrency {p['per_host']}: the politeness ceiling is {ceiling:.0f} pages/s for the "
        f"whole fleet. Each run: W `prefect worker start --limit 1` processes (online before the clock starts), one "
        f"`sieve fleet crawl demo` into a fresh warehouse (claims of up to {p.get('claim_urls', 200)} URLs, `max_claims` = W, a flow run "
        f"per claim). Measurements interleaved; load average before each run in the last column (2 cores shared "
        "with other work: the lead reruns this on a quieter machine). A claim's worker fetches the articles it finds on "
        "its hosts' list pages (up to `claim_urls` fetches), so a host is usually done in its first claim: claims = "
        "about max(W, hosts' articles / `claim_urls`).",
        "",
        table(["worker processes", "runs", "pages/s (median)", "vs 1", "wall (s)", "claims", "claim start (s)",
               "CPU ms/page", "fetched twice", "load before"], rows),
        "",
        f"The loader alone: {load['shards']} shards of {load['pages_per_shard']} pages (a fetch with about 20 KB of HTML, "
        f"its article, a link: {load['rows']} rows) applied in {load['seconds']} s: **{load['rows_per_s']:,} rows/s, "
        f"{load['pages_per_s']:,} pages/s** (one transaction per shard, load average {load['load_average']}).",
        "",
        "What it implies for N machines: a worker process here carried about "
        f"{per_worker:.1f} pages/s at {cpu_ms:.0f} ms of CPU a page (fetching, extraction, shards, the claim run's start), so "
        f"one core keeps about {1000 / cpu_ms:.0f} pages/s busy; a machine of C cores runs about C such workers. The fleet "
        f"then scales with machines until one of three ceilings: the hosts' politeness (hosts x per-host concurrency / "
        f"latency: {ceiling:.0f} pages/s here; a host never goes faster however many workers), the one loader "
        f"(about {load['pages_per_s']:,} pages/s on this machine: that many pages a second is where adding workers stops "
        "helping), and the claim runs' start-up (claim start, median above), which claims of a few hundred URLs amortise.",
    ]
    return "\n".join(text)


def block(payload: dict[str, Any]) -> str:
    """The fleet's section of BENCHMARKS.md, between its markers."""
    return f"{BEGIN}\n## The fleet: worker processes and the loader (bench/fleet.py)\n\n{render(payload)}\n{END}"


def splice(payload: dict[str, Any], path: Path = REPORT) -> Path:
    """Put the fleet's section into BENCHMARKS.md (replacing the previous one, else after the race); the rest stays."""
    block_text = block(payload)
    text = path.read_text(encoding="utf-8") if path.exists() else "# sieve benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block_text + rest.split(END, 1)[1]
    elif "<!-- race: end -->" in text:       # right after the race section, which stays as it is
        head, rest = text.split("<!-- race: end -->", 1)
        text = head + "<!-- race: end -->\n\n" + block_text + "\n" + rest
    else:
        text = text.rstrip() + "\n\n" + block_text + "\n"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 hosts, 30 articles, one round")
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--claim-urls", type=int, default=500, help="fleet.claim_urls: a host's whole due set per claim")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--loader-shards", type=int, default=40)
    parser.add_argument("--report-only", action="store_true", help="rewrite the BENCHMARKS.md section from fleet.json")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.report_only:
        payload = read_json("fleet")
        if payload is None:
            raise SystemExit("no bench/out/fleet.json: run python -m bench.fleet first")
        print(f"wrote {splice(payload)}")
        return
    if args.quick:
        args.hosts, args.articles, args.rounds, args.loader_shards = 3, 30, 1, 10
    counts = [int(w) for w in args.workers.split(",")]
    order = [w for r in range(args.rounds) for w in (counts if r % 2 == 0 else counts[::-1])]
    from flows.prefect_env import LocalPrefectServer

    scratch = Path(tempfile.mkdtemp(prefix="sieve-bench-fleet-"))
    server = LocalPrefectServer(scratch / "prefect", ui=False, startup_timeout=240)
    api_url = server.start()
    env = quiet_env({"PREFECT_API_URL": api_url, "PREFECT_WORKER_QUERY_SECONDS": "1",
                     "PREFECT_LOGGING_LEVEL": "WARNING"})
    pool = "bench-fleet"
    runs: list[dict[str, Any]] = []
    try:
        deploy = subprocess.run([PYTHON, "-m", "flows.cli", "fleet", "deploy", "--pool", pool,
                                 "--config", str(ROOT / "config.yaml")], env=env, cwd=str(ROOT), capture_output=True,
                                text=True, timeout=300)
        if deploy.returncode != 0:
            raise SystemExit(f"sieve fleet deploy failed: {deploy.stderr[-2000:]}")
        hosts = [DemoServerProcess(args.articles, latency_ms=args.latency_ms) for _ in range(args.hosts)]
        for h in hosts:
            h.__enter__()
        try:
            for w in order:
                r = measure(w, hosts, pool, api_url, env, args.per_host, args.claim_urls, scratch)
                print(json.dumps(r), flush=True)
                runs.append(r)
        finally:
            for h in hosts:
                h.__exit__()
        load = loader(scratch, args.loader_shards, 250)
        print(json.dumps(load), flush=True)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    command = "python -m bench.fleet" + (" --quick" if args.quick else "") + "".join(
        f" {a}" for a in (argv or []) if a != "--quick")
    payload = {"command": command, "params": {"hosts": args.hosts, "articles": args.articles,
                                              "latency_ms": args.latency_ms, "per_host": args.per_host,
                                              "claim_urls": args.claim_urls,
                                              "workers": counts, "rounds": args.rounds},
               "runs": runs, "loader": load}
    path = write_json("fleet", payload)
    print(f"wrote {path} and {splice(read_json('fleet') or payload)}")


if __name__ == "__main__":
    main()
