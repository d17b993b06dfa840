"""Numbered schema migrations, recorded in the database itself (`schema_migrations`).

A migration is never edited once released: a change to the schema is a new, higher number. Opening
an older file applies the missing ones in order, each in its own transaction with its record; a file
whose recorded version is higher than `LATEST_VERSION` was written by a newer sieve and is refused.
Times are TIMESTAMPTZ holding UTC; nothing here needs sieve code to read (plain DuckDB SQL only).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from .errors import SchemaTooNew


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


_TABLES = """
CREATE TABLE sources (
    source_id     VARCHAR PRIMARY KEY,
    config_hash   VARCHAR NOT NULL,
    config_json   JSON,
    first_seen    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE crawl_runs (
    run_id        VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,
    source_id     VARCHAR,
    params        JSON,
    counts        JSON,
    status        VARCHAR NOT NULL,
    error         VARCHAR,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE TABLE frontier (
    url             VARCHAR PRIMARY KEY,
    source_id       VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    discovered_from VARCHAR,
    discovered_at   TIMESTAMPTZ NOT NULL,
    seq             BIGINT NOT NULL,          -- discovery order
    next_fetch_at   TIMESTAMPTZ,              -- NULL: due now (never fetched)
    attempts        INTEGER NOT NULL DEFAULT 0, -- consecutive failed fetches since the last success
    fetch_count     INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_error      VARCHAR,
    etag            VARCHAR,
    last_modified   VARCHAR,
    last_fetched_at TIMESTAMPTZ,
    last_ok_at      TIMESTAMPTZ
);
CREATE TABLE fetches (
    fetch_id      VARCHAR PRIMARY KEY,        -- hash of run, url, time: replaying a batch adds nothing
    run_id        VARCHAR,
    source_id     VARCHAR NOT NULL,
    url           VARCHAR NOT NULL,
    kind          VARCHAR,
    final_url     VARCHAR,
    status        INTEGER,
    error         VARCHAR,                    -- error kind; NULL on success (2xx or 304)
    detail        VARCHAR,
    content_type  VARCHAR,
    bytes         BIGINT,
    elapsed_ms    INTEGER,
    encoding      VARCHAR,
    replaced      BOOLEAN,
    attempts      INTEGER,
    fetched_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE pages (
    url           VARCHAR PRIMARY KEY,
    source_id     VARCHAR NOT NULL,
    kind          VARCHAR,
    final_url     VARCHAR,
    html          VARCHAR NOT NULL USING COMPRESSION zstd,   -- zstd: smaller and far cheaper to checkpoint
    html_hash     VARCHAR NOT NULL,
    encoding      VARCHAR,
    content_type  VARCHAR,
    fetched_at    TIMESTAMPTZ NOT NULL,       -- latest fetch that returned HTML
    changed_at    TIMESTAMPTZ NOT NULL        -- when html_hash last changed
);
CREATE TABLE articles (
    article_id        VARCHAR PRIMARY KEY,    -- hash of the canonical URL
    source_id         VARCHAR NOT NULL,
    url               VARCHAR NOT NULL,
    page_url          VARCHAR,
    title             VARCHAR,
    author            VARCHAR,
    account           VARCHAR,
    published_at      TIMESTAMPTZ,
    text              VARCHAR NOT NULL USING COMPRESSION zstd,
    content_hash      VARCHAR,
    simhash           UBIGINT,
    dup_of            VARCHAR,                -- article_id of the first-seen copy; NULL for a distinct article
    flags             VARCHAR,
    extractor_version VARCHAR,
    rules_version     VARCHAR,
    extracted_at      TIMESTAMPTZ,
    first_seen        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,   -- = first_seen until text or metadata change
    seen_seq          BIGINT NOT NULL         -- first-seen order (ties inside a batch: batch order)
);
CREATE TABLE extractions (
    url               VARCHAR PRIMARY KEY,    -- the page URL: its latest extraction outcome
    source_id         VARCHAR NOT NULL,
    outcome           VARCHAR NOT NULL,       -- 'article' | 'rejected'
    article_id        VARCHAR,
    reason            VARCHAR,
    detail            VARCHAR,
    extractor_version VARCHAR,
    rules_version     VARCHAR,
    html_hash         VARCHAR,
    extracted_at      TIMESTAMPTZ
);
"""

_VIEWS = """
CREATE OR REPLACE VIEW v_articles AS
SELECT a.article_id, a.source_id, a.url, a.title, a.author, a.account, a.published_at, a.text,
       a.content_hash, a.flags, a.first_seen, a.updated_at, a.extracted_at,
       1 + coalesce(c.n, 0)           AS copies,
       coalesce(c.urls, [])           AS copy_urls
FROM articles a
LEFT JOIN (
    SELECT dup_of, count(*) AS n, list(url ORDER BY seen_seq) AS urls
    FROM articles WHERE dup_of IS NOT NULL GROUP BY dup_of
) c ON c.dup_of = a.article_id
WHERE a.dup_of IS NULL;

CREATE OR REPLACE VIEW v_daily AS
WITH f AS (
    SELECT source_id, CAST(fetched_at AT TIME ZONE 'UTC' AS DATE) AS day,
           count(*) AS fetched, count(*) FILTER (WHERE error IS NOT NULL) AS failures
    FROM fetches GROUP BY ALL
), n AS (
    SELECT source_id, CAST(first_seen AT TIME ZONE 'UTC' AS DATE) AS day,
           count(*) AS new, count(*) FILTER (WHERE dup_of IS NOT NULL) AS duplicates
    FROM articles GROUP BY ALL
), u AS (
    SELECT source_id, CAST(updated_at AT TIME ZONE 'UTC' AS DATE) AS day, count(*) AS updated
    FROM articles WHERE updated_at > first_seen GROUP BY ALL
)
SELECT source_id, day,
       coalesce(f.fetched, 0)    AS fetched,
       coalesce(n.new, 0)        AS new,
       coalesce(u.updated, 0)    AS updated,
       coalesce(n.duplicates, 0) AS duplicates,
       coalesce(f.failures, 0)   AS failures
FROM f FULL OUTER JOIN n USING (source_id, day) FULL OUTER JOIN u USING (source_id, day)
ORDER BY day, source_id;

CREATE OR REPLACE VIEW v_source_health AS
WITH ids AS (
    SELECT source_id FROM sources UNION SELECT source_id FROM fetches UNION SELECT source_id FROM crawl_runs
    WHERE source_id IS NOT NULL
), f AS (
    SELECT source_id, count(*) AS fetches,
           count(*) FILTER (WHERE error IS NULL) AS ok,
           count(*) FILTER (WHERE error IS NOT NULL) AS failures,
           max(fetched_at) FILTER (WHERE error IS NULL) AS last_ok_fetch
    FROM fetches GROUP BY source_id
), k AS (
    SELECT source_id, map_from_entries(list({'k': error, 'v': n} ORDER BY n DESC, error)) AS failures_by_kind
    FROM (SELECT source_id, error, count(*) AS n FROM fetches WHERE error IS NOT NULL GROUP BY ALL)
    GROUP BY source_id
), r AS (
    SELECT source_id,
           max(finished_at) FILTER (WHERE status = 'completed') AS last_good_crawl,
           arg_max(status, started_at) AS last_run_status
    FROM crawl_runs WHERE source_id IS NOT NULL GROUP BY source_id
)
SELECT ids.source_id,
       coalesce(f.fetches, 0)  AS fetches,
       coalesce(f.ok, 0)       AS ok,
       coalesce(f.failures, 0) AS failures,
       round(f.ok / nullif(f.fetches, 0), 4) AS success_rate,
       f.last_ok_fetch,
       r.last_good_crawl,
       r.last_run_status,
       coalesce(k.failures_by_kind, MAP {}) AS failures_by_kind
FROM ids LEFT JOIN f USING (source_id) LEFT JOIN k USING (source_id) LEFT JOIN r USING (source_id)
ORDER BY ids.source_id;
"""

# Narrow keys so a batch finds changes and duplicates without reading stored text or long strings.
_ARTICLE_KEYS = """
ALTER TABLE articles ADD COLUMN IF NOT EXISTS row_hash VARCHAR;      -- hash of text and metadata
ALTER TABLE articles ADD COLUMN IF NOT EXISTS content_key UBIGINT;   -- first 64 bits of content_hash
UPDATE articles SET content_key = TRY_CAST('0x' || left(content_hash, 16) AS UBIGINT) WHERE content_key IS NULL;
"""

# Articles without the primary-key index, and with an integer key for the writer's lookups.
# A batch replaces its stored articles by delete + insert (an UPDATE rewrites the zstd text: 50-100x
# slower); with an ART index on article_id the same delete + insert cost about 3x more, most of it at
# commit (bench/warehouse.py, "upsert forms"). Lookups join on numeric columns only (batches.py).
# Uniqueness of article_id is the single writer's rule
# (each batch de-duplicated, stored versions deleted before the batch is inserted, one transaction);
# tests/test_warehouse_writes.py holds it. DuckDB cannot drop a constraint, so the table is rebuilt
# (about 15 s per 200k articles, once). Views bind by name and need no change. The key expressions
# are batches.KEY_SQL and HEX_KEY_SQL (a test holds them equal).
_ARTICLES_UNINDEXED = """
CREATE TABLE articles_rebuilt (
    article_id        VARCHAR NOT NULL,       -- hash of the canonical URL; unique (the writer's rule)
    source_id         VARCHAR NOT NULL,
    url               VARCHAR NOT NULL,
    page_url          VARCHAR,
    title             VARCHAR,
    author            VARCHAR,
    account           VARCHAR,
    published_at      TIMESTAMPTZ,
    text              VARCHAR NOT NULL USING COMPRESSION zstd,
    content_hash      VARCHAR,
    simhash           UBIGINT,
    dup_of            VARCHAR,
    flags             VARCHAR,
    extractor_version VARCHAR,
    rules_version     VARCHAR,
    extracted_at      TIMESTAMPTZ,
    first_seen        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    seen_seq          BIGINT NOT NULL,
    row_hash          UHUGEINT,               -- the 128-bit change hash (was its hex): compared without strings
    content_key       UBIGINT,
    article_key       UHUGEINT NOT NULL       -- md5_number(article_id) (batches.KEY_SQL): the writer joins on it
);
INSERT INTO articles_rebuilt
SELECT * REPLACE (TRY_CAST('0x' || row_hash AS UHUGEINT) AS row_hash), md5_number(article_id)
FROM articles ORDER BY seen_seq;
DROP TABLE articles;
ALTER TABLE articles_rebuilt RENAME TO articles;
"""

# Integer keys of the URL-keyed tables, for the writer's lookups (their primary keys stay: a plain INSERT
# checks them cheaply; what was slow was ON CONFLICT, 10-80 ms per 100 rows, and joins on the VARCHAR url).
# `is_start`: a configured start URL (make_due marks them), due at every scheduled run and never given up.
_URL_KEYS = """
ALTER TABLE frontier ADD COLUMN IF NOT EXISTS url_key UHUGEINT;
UPDATE frontier SET url_key = md5_number(url);
ALTER TABLE frontier ADD COLUMN IF NOT EXISTS is_start BOOLEAN DEFAULT false;
UPDATE frontier SET is_start = false WHERE is_start IS NULL;
ALTER TABLE pages ADD COLUMN IF NOT EXISTS url_key UHUGEINT;
ALTER TABLE pages ADD COLUMN IF NOT EXISTS html_key UHUGEINT;       -- html_hash as a number
UPDATE pages SET url_key = md5_number(url), html_key = TRY_CAST('0x' || html_hash AS UHUGEINT);
ALTER TABLE extractions ADD COLUMN IF NOT EXISTS url_key UHUGEINT;
UPDATE extractions SET url_key = md5_number(url);
"""

# Runs record who runs them (a killed run is marked `crashed` at the next start, runs.py), and a good
# crawl is one that fetched something: a completed crawl or backfill with at least one successful fetch
# (2xx or 304). A run whose every request failed (robots.txt down, host gone) or a reextract is not.
# Part of migration 6 (reports.STATS_SQL uses it too): change it only together with a new migration.
GOOD_RUNS_SQL = """
SELECT r.source_id, r.run_id, r.finished_at FROM crawl_runs r
WHERE r.status = 'completed' AND r.kind IN ('crawl', 'backfill') AND r.source_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM fetches f WHERE f.run_id = r.run_id AND f.error IS NULL)
"""

_RUN_OWNERS = f"""
ALTER TABLE crawl_runs ADD COLUMN IF NOT EXISTS pid INTEGER;
ALTER TABLE crawl_runs ADD COLUMN IF NOT EXISTS host VARCHAR;
ALTER TABLE crawl_runs ADD COLUMN IF NOT EXISTS heartbeat_at TIMESTAMPTZ;
CREATE OR REPLACE VIEW v_source_health AS
WITH ids AS (
    SELECT source_id FROM sources UNION SELECT source_id FROM fetches UNION SELECT source_id FROM crawl_runs
    WHERE source_id IS NOT NULL
), f AS (
    SELECT source_id, count(*) AS fetches,
           count(*) FILTER (WHERE error IS NULL) AS ok,
           count(*) FILTER (WHERE error IS NOT NULL) AS failures,
           max(fetched_at) FILTER (WHERE error IS NULL) AS last_ok_fetch
    FROM fetches GROUP BY source_id
), k AS (
    SELECT source_id, map_from_entries(list({{'k': error, 'v': n}} ORDER BY n DESC, error)) AS failures_by_kind
    FROM (SELECT source_id, error, count(*) AS n FROM fetches WHERE error IS NOT NULL GROUP BY ALL)
    GROUP BY source_id
), g AS (
    SELECT source_id, max(finished_at) AS last_good_crawl FROM ({GOOD_RUNS_SQL}) GROUP BY source_id
), r AS (
    SELECT source_id, arg_max(status, started_at) AS last_run_status
    FROM crawl_runs WHERE source_id IS NOT NULL GROUP BY source_id
)
SELECT ids.source_id,
       coalesce(f.fetches, 0)  AS fetches,
       coalesce(f.ok, 0)       AS ok,
       coalesce(f.failures, 0) AS failures,
       round(f.ok / nullif(f.fetches, 0), 4) AS success_rate,
       f.last_ok_fetch,
       g.last_good_crawl,
       r.last_run_status,
       coalesce(k.failures_by_kind, MAP {{}}) AS failures_by_kind
FROM ids LEFT JOIN f USING (source_id) LEFT JOIN k USING (source_id) LEFT JOIN g USING (source_id)
LEFT JOIN r USING (source_id)
ORDER BY ids.source_id;
"""

# The fleet (warehouse/claims.py, warehouse/loader.py): the dispatcher's claims on due URLs, each holding
# its hosts alone while its lease runs, and the ledger of shards the loader applied (loading one twice
# is then a no-op). `claimed_urls` holds the URLs of open claims only: closing a claim deletes them.
_FLEET = """
CREATE TABLE claims (
    claim_id    VARCHAR PRIMARY KEY,
    run_id      VARCHAR NOT NULL,         -- the dispatching run (crawl_runs)
    source_id   VARCHAR NOT NULL,
    hosts       VARCHAR[] NOT NULL,       -- host[:port]: fetched by this claim's worker alone while it is open
    urls        INTEGER NOT NULL,
    status      VARCHAR NOT NULL,         -- open | done | expired
    worker      VARCHAR,                  -- who took it (the Prefect flow run), once known
    created_at  TIMESTAMPTZ NOT NULL,
    lease_s     DOUBLE NOT NULL,          -- each proof of life (a shard written in time) extends the lease this long
    lease_until TIMESTAMPTZ NOT NULL,         -- until the first proof: the time its worker has to start
    started_at  TIMESTAMPTZ,                  -- its worker's first proof of life
    closed_at   TIMESTAMPTZ
);
CREATE TABLE claimed_urls (
    url_key   UHUGEINT NOT NULL,          -- md5_number(url), as frontier.url_key
    url       VARCHAR NOT NULL,
    claim_id  VARCHAR NOT NULL,
    host      VARCHAR NOT NULL
);
CREATE TABLE shard_loads (
    shard_id    VARCHAR PRIMARY KEY,      -- <source>/<claim_id>/<part>
    claim_id    VARCHAR,
    run_id      VARCHAR,
    source_id   VARCHAR,
    written_at  TIMESTAMPTZ,
    loaded_at   TIMESTAMPTZ NOT NULL,
    counts      JSON
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables", _TABLES),
    Migration(2, "views", _VIEWS),
    Migration(3, "article change and duplicate keys", _ARTICLE_KEYS),
    Migration(4, "articles: integer id key, no index", _ARTICLES_UNINDEXED),
    Migration(5, "url keys, start urls", _URL_KEYS),
    Migration(6, "run owners and heartbeat; a good crawl fetched something", _RUN_OWNERS),
    Migration(7, "fleet: claims with leases, loaded shards", _FLEET),
)
LATEST_VERSION = MIGRATIONS[-1].version

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest recorded migration, 0 for a fresh file."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0]


def check_not_too_new(version: int, where: str) -> None:
    if version > LATEST_VERSION:
        raise SchemaTooNew(
            f"warehouse {where} has schema version {version}, but this sieve knows only up to "
            f"{LATEST_VERSION}: it was written by a newer sieve. Upgrade sieve (or use another "
            f"warehouse.path); the file was left untouched."
        )


def apply_migrations(con: duckdb.DuckDBPyConnection, where: str, *, target: int = LATEST_VERSION) -> int:
    """Bring the file up to `target`, one transaction per migration. Returns the version reached."""
    version = current_version(con)
    check_not_too_new(version, where)
    for migration in MIGRATIONS:
        if migration.version <= version or migration.version > target:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(_LEDGER)
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())",
                [migration.version, migration.name],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        version = migration.version
    return version
