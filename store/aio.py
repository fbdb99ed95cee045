"""`AsyncPostgresStore`, the asyncio shell around the store core.

This file is the source of the blocking `PostgresStore` too: tests/tools/async_to_sync.py
writes `sync.py` from it, so the two cannot drift. Edit this file, then run
``python -m tests.tools.async_to_sync``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from langgraph.store.base import Op, Result, SearchItem, TTLConfig
from psycopg import AsyncConnection, AsyncPipeline
from psycopg_pool import AsyncConnectionPool

from checkpoint_pg._runtime.aead import RowBoundEncryption
from checkpoint_pg._runtime.aio import AsyncShell, aopen_conn
from checkpoint_pg._runtime.periodic import PeriodicTask, TaskHandle
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg._runtime.twins import blocking_twin
from store._batch import Plan
from store._core import (
    DEFAULT_SWEEP_BATCH,
    SWEEP_FAILED,
    StoreCore,
    log_sweep,
    logger,
)
from store._text import SearchChoice, SearchMode

__all__ = ["AsyncPostgresStore"]


class AsyncPostgresStore(AsyncShell, StoreCore):
    """LangGraph long-term memory on PostgreSQL, drop-in for the official store of the same name.

    `batch` and `abatch` are twins: the blocking store runs `abatch` in a worker thread; the
    async store answers `batch` calls made from other threads on its event loop (on the
    loop's own thread they raise, as they would deadlock).

    Args:
        conn: a psycopg connection (any row factory, autocommit or not) or connection pool.
        pipe: an open pipeline of `conn` (single connection only).
        index: semantic search configuration (official `PostgresIndexConfig`), needs pgvector.
        ttl: TTL configuration (`default_ttl`, `refresh_on_read`, `sweep_interval_minutes`).
        schema: keyword-only; put the tables in this PostgreSQL schema.
        range_index_fields: keyword-only; dotted value paths (``"score"``, ``"meta.n"``) whose
            range filters (``$gt``, ``$lte``…) get an expression index at `setup()`. Equality
            filters need nothing: a GIN index on the whole value serves them.
        retry: keyword-only; how transient faults are retried (`checkpoint_pg.retry`): None
            for the default `RetryPolicy`, `RetryPolicy.never()` to surface every fault.
        encryption: keyword-only; a `RowBoundEncryption` keyring: each item value is sealed
            with AES-GCM to its (namespace, key), and one that is unencrypted, altered or
            moved raises `TamperedValueError` on read. Not with ``index=``, range indexes or
            search filters, which read values in SQL. See `checkpoint_pg.encryption`.
    """

    _async_hint = "`await store.abatch(...)` (aget, aput, asearch, …)"

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
        encryption: RowBoundEncryption | None = None,
    ) -> None:
        StoreCore.__init__(
            self,
            index=index,
            ttl=ttl,
            schema=schema,
            range_index_fields=range_index_fields,
            encryption=encryption,
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
        encryption: RowBoundEncryption | None = None,
    ) -> AsyncIterator[AsyncPostgresStore]:
        """A store on one new connection, as the official store has it (or on a pool).

        ``store.conn`` is that `AsyncConnection` (autocommit, ``dict_row`` rows), usable as on
        the official store; with `pool_config` (the official option: ``min_size``,
        ``max_size`` (default 10), ``kwargs`` and any other pool argument) it is a connection
        pool instead, and `pipeline` is ignored, as the official store does. A connection that
        cannot be opened fails at once with libpq's reason (`ConnectionFailedError`). A lost
        connection is replaced before the next statement and the operation retried, unless it
        ran inside the caller's own pipeline or transaction (with ``pipeline=True`` it is never
        replaced: its pipeline would go with it).
        """
        pool = None if pool_config is None else dict(pool_config)
        async with aopen_conn(conn_string, pipeline=pipeline, pool=pool, pooler=pooler) as (
            conn,
            pipe,
            owned,
        ):
            store = cls(
                conn,
                pipe=pipe,
                index=index,
                ttl=ttl,
                schema=schema,
                retry=retry,
                encryption=encryption,
            )
            store._owned = owned
            yield store

    async def setup(self, *, distributed: bool = False) -> None:
        """Create or migrate the tables; safe from many processes at once, on every start.

        `distributed=True` (Citus only) then shards them by namespace (``prefix``), the
        migration tables as reference tables (docs/scaling.md); `CitusUnavailableError`
        without the citus extension.
        """
        await self._run(self._setup_op(distributed))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run a batch of ops in a constant number of round trips (embeddings first)."""
        return await self._arun_plan(self._plan(ops))

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
        mode: SearchMode | None = None,
        ann_search: Mapping[str, Any] | None = None,
    ) -> list[SearchItem]:
        """Search items under `namespace_prefix`, as `BaseStore.asearch`; `mode` ranks the
        query by ``"vector"``, ``"text"`` or ``"hybrid"`` for this call (None: the store's
        default, hybrid when both indexes are configured); `ann_search` replaces the index's
        ``ann_search`` settings for this call (``{"ef_search": 200}``...)."""
        op = self._search_op(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        choice = SearchChoice(mode, ann_search)
        return self._searched(await self._arun_plan(self._plan([op], {0: choice})))

    async def _arun_plan(self, plan: Plan) -> list[Result]:
        documents: list[list[float]] = []
        queries: list[list[float]] = []
        if self.embeddings is not None:
            if plan.documents:
                documents = await self.embeddings.aembed_documents([d[3] for d in plan.documents])
            queries = [await self.embeddings.aembed_query(q) for q in plan.queries]
        return await self._run(plan.operation(documents, queries))

    # -- TTL ---------------------------------------------------------------------------------

    async def sweep_ttl(self, *, batch_size: int = DEFAULT_SWEEP_BATCH) -> int:
        """Delete expired items in batches of `batch_size`; return how many were deleted."""
        return await self._run(self._sweep_op(batch_size))

    async def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> TaskHandle:
        """Sweep expired items every interval in the background, until stopped."""
        seconds = self._sweep_seconds(sweep_interval_minutes)

        async def sweep() -> None:
            log_sweep(await self.sweep_ttl())

        return self._sweeper.start(sweep, seconds)

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper; True when it has stopped (or was not running)."""
        return await self._sweeper.stop(timeout)

    # -- the other mode's twin ----------------------------------------------------------------

    batch = blocking_twin(abatch)
    search = blocking_twin(asearch)
