"""The fleet's calls on the warehouse (claims.py, loader.py): claims of due URLs for workers, their leases,
and the loading of the shards the workers write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from . import claims as claim_store
from .access import WarehouseFile
from .claims import Claim
from .loader import apply_shard, prune_ledger
from .shards import Shard


def _now() -> datetime:
    return datetime.now(UTC)


class FleetCalls(WarehouseFile):
    def claim(
        self,
        run_id: str,
        source_id: str,
        *,
        max_claims: int,
        claim_urls: int,
        lease: timedelta,
        start: timedelta | None = None,
        kinds: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> list[Claim]:
        """Claim due URLs of the source for workers, host by host, keeping the run's open claims at `max_claims`.
        A claim's worker has `start` (default: `lease`) to write its first shard, then `lease` between two."""
        with self._writing() as con:
            return claim_store.claim(
                con,
                run_id,
                source_id,
                now or _now(),
                max_claims=max_claims,
                claim_urls=claim_urls,
                lease_s=lease.total_seconds(),
                start_s=None if start is None else start.total_seconds(),
                max_failures=self.max_failures,
                kinds=kinds,
            )

    def expire_claims(self, now: datetime | None = None) -> list[str]:
        """Close as expired the open claims whose lease has ended; their URLs are due to the next claim."""
        with self._writing() as con:
            return claim_store.expire(con, now or _now())

    def renew_claim(self, claim_id: str, proof_at: datetime) -> datetime | None:
        with self._writing() as con:
            return claim_store.renew(con, claim_id, proof_at)

    def close_claim(self, claim_id: str, status: str = "done", now: datetime | None = None) -> bool:
        with self._writing() as con:
            return claim_store.close(con, claim_id, now or _now(), status)

    def set_claim_worker(self, claim_id: str, worker: str) -> None:
        with self._writing() as con:
            claim_store.set_worker(con, claim_id, worker)

    def claims(self, *, source_id: str | None = None, run_id: str | None = None, open_only: bool = True) -> list[Claim]:
        with self._reading_schema() as con:
            return claim_store.read(con, source_id=source_id, run_id=run_id, open_only=open_only)

    def load_shard(self, shard: Shard) -> tuple[str, dict]:
        """Apply a fleet worker's shard in one transaction (loader.py): ("loaded", counts), ("already", {})
        or ("waiting", {}). ShardError for a shard this warehouse must refuse."""
        with self._writing() as con:
            return apply_shard(
                con,
                shard,
                _now(),
                retry_base_s=self.retry_backoff.total_seconds(),
                backoff_cap_s=self.max_backoff.total_seconds(),
                retry_after_cap_s=self.retry_after_cap.total_seconds(),
            )

    def prune_shard_loads(self, older_than: timedelta) -> int:
        """Drop the loader's ledger rows of claims closed longer than `older_than` ago (loader.prune_ledger)."""
        with self._writing() as con:
            return prune_ledger(con, _now() - older_than)
