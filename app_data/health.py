"""What `Database.health_check` and `Database.pool_status` report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.pool import NullPool, Pool, QueuePool

__all__ = ["HealthReport", "PoolStatus", "pool_status"]


@dataclass(frozen=True)
class PoolStatus:
    """What the connection pool holds right now.

    For a ``NullPool`` (pooler mode) there is nothing to count: the numbers are None and
    `description` says why, instead of the call failing.
    """

    kind: str
    pooled: bool
    size: int | None
    checked_in: int | None
    checked_out: int | None
    overflow: int | None
    description: str


@dataclass(frozen=True)
class HealthReport:
    """The result of `Database.health_check`."""

    healthy: bool
    latency_ms: float
    pool: PoolStatus
    server_version: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data (for a health endpoint)."""
        return asdict(self)


def pool_status(pool: Pool) -> PoolStatus:
    """Report the occupancy of `pool` (never fails, whatever the pool class)."""
    if isinstance(pool, QueuePool):
        return PoolStatus(
            kind=type(pool).__name__,
            pooled=True,
            size=pool.size(),
            checked_in=pool.checkedin(),
            checked_out=pool.checkedout(),
            overflow=pool.overflow(),
            description=pool.status(),
        )
    reason = (
        "no client-side pool: the transaction pooler (PgBouncer/Supavisor) pools connections"
        if isinstance(pool, NullPool)
        else pool.status()
    )
    return PoolStatus(
        kind=type(pool).__name__,
        pooled=False,
        size=None,
        checked_in=None,
        checked_out=None,
        overflow=None,
        description=reason,
    )
