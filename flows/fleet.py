"""Prefect flows for crawling beyond one machine (docs/orchestration.md, "Several machines"):

    dispatch      beside the warehouse: claims due URLs host by host and starts one `crawl-claim` run per
                  claim through the work pool's deployment; loads the shards as they land (pipeline/dispatch.py)
    crawl-claim   on any worker machine (sieve installed, PREFECT_API_URL set): fetches, extracts and writes
                  each committed window as a shard on shared storage (pipeline/shard_run.py); one task run,
                  `write-shard`, per window
    load-shards   beside the warehouse: applies complete shards, one transaction each (warehouse/loader.py)

A worker needs neither config.yaml nor the warehouse: a claim's run gets the source's configuration,
the claim (its URLs, hosts and lease) and the shards location as parameters. Large HTML never passes
through Prefect: it travels in the shards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_flow_run

from flows.config import DEFAULT_CONFIG, Config, load_config
from flows.crawl import _task_runner, retry_transient
from flows.dask_runner import extraction_executor_factory
from flows.early import RunHooks, current_hooks
from flows.pipeline import source_spec, stream_options
from pipeline.dispatch import Dispatcher, DispatchSettings, load_pass
from pipeline.shard_run import ClaimRun
from pipeline.write import Window
from warehouse import Claim, ExtractionCounts, FrontierItem
from warehouse.shards import ShardStore

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.deployments.runner import RunnerDeployment

CLAIM_FLOW = "crawl-claim"
DEPLOYMENT = "fleet"
CLAIM_DEPLOYMENT = f"{CLAIM_FLOW}/{DEPLOYMENT}"
TAGS = ["sieve", "fleet"]


# ---- what crosses to a worker, as flow parameters (JSON) -----------------------------------------
def claim_parameters(claim: Claim) -> dict[str, Any]:
    return {
        "claim_id": claim.claim_id,
        "run_id": claim.run_id,
        "source_id": claim.source_id,
        "hosts": list(claim.hosts),
        "lease_until": claim.lease_until.isoformat(),
        "lease_s": claim.lease_s,
        "items": [[i.url, i.kind, i.etag, i.last_modified, i.attempts] for i in claim.items],
        "skip": list(claim.skip),
        "found_hosts": list(claim.found_hosts),
        "claim_urls": claim.claim_urls,
    }


def claim_from_parameters(data: dict[str, Any]) -> Claim:
    return Claim(
        claim_id=data["claim_id"],
        run_id=data["run_id"],
        source_id=data["source_id"],
        hosts=tuple(data["hosts"]),
        lease_until=datetime.fromisoformat(data["lease_until"]),
        lease_s=float(data["lease_s"]),
        items=tuple(FrontierItem(u, data["source_id"], k, e, m, int(a)) for u, k, e, m, a in data["items"]),
        skip=tuple(data.get("skip") or ()),
        found_hosts=tuple(data.get("found_hosts") or ()),
        claim_urls=int(data.get("claim_urls") or 0),
    )


def worker_config(config: Config, source: str) -> dict[str, Any]:
    """The config a worker needs for one source (validated again on the worker): no warehouse, no other source."""
    data = config.model_dump(mode="json", exclude={"warehouse"})
    data["sources"] = {source: data["sources"][source]}
    return data


# ---- the worker ------------------------------------------------------------------------------------
@task(
    name="write-shard",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_transient,
)
async def write_shard(window: Window) -> dict[str, int]:
    """Write one committed window as a shard part (Parquet files, then its manifest)."""
    await window.commit()
    return {"window": window.number, "rows": window.rows}


async def _commit_shard(window: Window) -> tuple[int, ExtractionCounts]:
    await write_shard(window)
    return 0, ExtractionCounts()


@flow(name=CLAIM_FLOW, log_prints=False, persist_result=False, task_runner=_task_runner())
async def crawl_claim(claim: dict[str, Any], config: dict[str, Any], shards: str) -> dict[str, Any]:
    """Fetch and extract one claim's URLs (its hosts alone) and write each window as a shard to `shards`."""
    logger = get_run_logger()
    cfg = Config.model_validate(config)
    the_claim = claim_from_parameters(claim)
    options = stream_options(cfg, (current_hooks() or RunHooks()).options)
    if (executor := extraction_executor_factory()) is not None:  # SIEVE_DASK: extraction on a Dask cluster
        options = dataclasses.replace(options, executor=executor)
    worker = f"{current_flow_run.id or 'no-flow-run'} {socket.gethostname()}:{os.getpid()}"
    logger.info(
        "claim %s: %d URLs of %s, lease until %s, shards to %s",
        the_claim.claim_id,
        len(the_claim.items),
        ", ".join(the_claim.hosts),
        the_claim.lease_until,
        shards,
    )
    async with ClaimRun(
        source_spec(cfg, the_claim.source_id),
        the_claim,
        ShardStore(shards),
        options=options,
        commit=_commit_shard,
        worker=worker,
    ) as run:
        await run.crawl_claim()
    summary = run.summary.as_dict()
    logger.info("claim %s %s: %s", the_claim.claim_id, summary["status"], summary)
    return summary


# ---- beside the warehouse ----------------------------------------------------------------------------
@flow(name="dispatch", log_prints=False, persist_result=False)
async def dispatch(
    source: str, config_path: str = str(DEFAULT_CONFIG), deployment: str = CLAIM_DEPLOYMENT
) -> dict[str, Any]:
    """Crawl one source through the fleet: claim its due URLs host by host, start a `crawl-claim` run per
    claim on the work pool, load the shards as they land, until nothing is due and nothing is out."""
    from prefect.deployments import arun_deployment

    logger = get_run_logger()
    cfg = load_config(config_path)
    fleet = cfg.fleet
    payload = worker_config(cfg, source)
    hooks = current_hooks() or RunHooks()

    async def launch(claim: Claim) -> str:
        run = await arun_deployment(
            deployment,
            parameters={"claim": claim_parameters(claim), "config": payload, "shards": fleet.shards},
            timeout=0,
            as_subflow=False,
            tags=[*TAGS, f"source:{source}"],
            flow_run_name=f"claim-{claim.claim_id}",
        )
        return str(run.id)

    settings = DispatchSettings(
        claim_urls=fleet.claim_urls,
        max_claims=fleet.max_claims,
        lease_s=fleet.lease_seconds,
        start_s=fleet.start_seconds,
        poll_s=fleet.poll_seconds,
        clean_after_s=fleet.clean_after_seconds,
    )
    dispatcher = Dispatcher(
        source_spec(cfg, source),
        cfg.warehouse.path,
        ShardStore(fleet.shards),
        launch,
        settings=settings,
        options=stream_options(cfg, hooks.options),
        stop=hooks.stop,
        params={"deployment": deployment},
    )
    logger.info("dispatching %s to %s (shards: %s)", source, deployment, fleet.shards)
    summary = await dispatcher.run()
    await acreate_markdown_artifact(
        markdown=summary.markdown() + f"\n- {dispatcher.claims_made} claims, {dispatcher.rounds} rounds",
        key=f"dispatch-{source}".replace("_", "-").lower(),
        description="sieve fleet crawl summary",
    )
    hooks.summaries.append(summary)
    result = summary.as_dict()
    result.update(claims=dispatcher.claims_made, rounds=dispatcher.rounds)
    logger.info("fleet crawl of %s %s: %s", source, summary.status, result)
    return result


@flow(name="load-shards", log_prints=False, persist_result=False)
async def load(config_path: str = str(DEFAULT_CONFIG), shards: str | None = None) -> dict[str, Any]:
    """Apply the complete shards under the fleet's shards location to the warehouse, one transaction each."""
    cfg = load_config(config_path)
    result = await asyncio.to_thread(
        load_pass,
        cfg.warehouse.path,
        ShardStore(shards or cfg.fleet.shards),
        clean_after=timedelta(seconds=cfg.fleet.clean_after_seconds),
    )
    get_run_logger().info("loaded shards: %s", result)
    return result


# ---- deployments -----------------------------------------------------------------------------------
def claim_deployment() -> RunnerDeployment:
    """`crawl-claim/fleet`: what the dispatcher starts per claim; every parameter comes with the run."""
    from prefect.types.entrypoint import EntrypointType

    # to_deployment and deploy are Prefect's async_dispatch: from sync code they return the value, not a
    # coroutine (their declared type is either)
    deployment = crawl_claim.to_deployment(
        name=DEPLOYMENT,
        entrypoint_type=EntrypointType.MODULE_PATH,
        tags=TAGS,
        description="One fleet claim: fetch, extract, write shards (started by `dispatch`)",
    )
    return cast("RunnerDeployment", deployment)


def deploy_claims(work_pool: str) -> str:
    """Register `crawl-claim/fleet` in a work pool (created, type process, if missing). Needs PREFECT_API_URL."""
    from prefect import deploy

    _ensure_pool(work_pool)
    ids = deploy(
        claim_deployment(),
        work_pool_name=work_pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    [deployment_id] = cast("list[UUID]", ids)  # async_dispatch, as above
    return str(deployment_id)


def _ensure_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async def create() -> None:
        async with get_client() as client:
            try:
                await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            except ObjectAlreadyExists:
                pass

    asyncio.run(create())


__all__ = [
    "CLAIM_DEPLOYMENT",
    "claim_deployment",
    "claim_from_parameters",
    "claim_parameters",
    "crawl_claim",
    "deploy_claims",
    "dispatch",
    "load",
    "worker_config",
]
