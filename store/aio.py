"""`AsyncPostgresStore`: the asyncio shell around the store core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from langgraph.store.base import Op, Result, TTLConfig
from psycopg import AsyncConnection, AsyncPipeline
from psycopg_pool import AsyncConnectionPool

from checkpoint_pg._runtime.periodic import PeriodicTask
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg._runtime.shell import AsyncShell, connect_async
from store._core import (
    DEFAULT_SWEEP_BATCH,
    SWEEP_FAILED,
    StoreCore,
    log_sweep,
    logger,
    pool_size,
)

__all__ = ["AsyncPostgresStore"]


class AsyncPostgresStore(AsyncShell, StoreCore):
    """Async LangGraph long-term memory on PostgreSQL, drop-in for `AsyncPostgresStore`.

    Its blocking `batch` may be called from another thread while its event loop runs.
    """

    def __init__(
        self,
        conn: AsyncConnection[Any] | AsyncConnectionPool[Any],
        *,
        pipe: AsyncPipeline | None = None,
        index: Mapping[str, Any] | None = None,
        ttl: TTLConfig | None = None,
        schema: str | None = None,
        range_index_fields: Iterable[str] = (),
        retry: RetryPolicy | None = None,
    ) -> None:
        StoreCore.__init__(
            self, index=index, ttl=ttl, schema=schema, range_index_fields=range_index_fields
        )
        self._attach(conn, pipe, retry)
        self._sweeper = PeriodicTask("store-ttl-sweeper", logger, SWEEP_FAILED)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        pipeline: bool = False,
        pool_config: Mapping[str, Any] | None = None,
        index: Mapping[str, Any] | None = None,
        ttl: TTLConfig | None = None,
        schema: str | None = None,
        pooler: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[AsyncPostgresStore]:
        """Async twin of `PostgresStore.from_conn_string`."""
        size = pool_size(pool_config)
        async with connect_async(conn_string, pipeline=pipeline, pool_size=size, pooler=pooler) as (
            conn,
            pipe,
        ):
            yield cls(conn, pipe=pipe, index=index, ttl=ttl, schema=schema, retry=retry)

    async def setup(self) -> None:
        """Create or migrate the tables; safe from many processes at once, on every start."""
        await self._run(self._setup_op())

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run a batch of ops in a constant number of round trips (embeddings first)."""
        plan = self._plan(ops)
        documents: list[list[float]] = []
        queries: list[list[float]] = []
        if self.embeddings is not None:
            if plan.documents:
                documents = await self.embeddings.aembed_documents([d[3] for d in plan.documents])
            queries = [await self.embeddings.aembed_query(q) for q in plan.queries]
        return await self._run(plan.operation(documents, queries))

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        loop = self.loop
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if loop is None or on_loop or not loop.is_running():
            raise asyncio.InvalidStateError(
                "Synchronous calls to AsyncPostgresStore are only allowed from a different "
                "thread while its event loop runs; use `await store.abatch(...)` (aget, aput, "
                "asearch, …) instead"
            )
        return asyncio.run_coroutine_threadsafe(self.abatch(list(ops)), loop).result()

    # -- TTL ---------------------------------------------------------------------------------

    async def sweep_ttl(self, *, batch_size: int = DEFAULT_SWEEP_BATCH) -> int:
        """Delete expired items in batches of `batch_size`; return how many were deleted."""
        return await self._run(self._sweep_op(batch_size))

    async def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> asyncio.Task[None]:
        """Sweep expired items every interval in a background task, until stopped."""
        seconds = self._sweep_seconds(sweep_interval_minutes)

        async def sweep() -> None:
            log_sweep(await self.sweep_ttl())

        return self._sweeper.start(sweep, seconds)

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper task; True when it has stopped (or was not running)."""
        return await self._sweeper.stop(timeout)
