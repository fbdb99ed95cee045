"""`AsyncPostgresCache`, the asyncio shell around the cache core.

This file is the source of the blocking `PostgresCache` too: tests/tools/async_to_sync.py
writes `sync.py` from it, so the two cannot drift. Edit this file, then run
``python -m tests.tools.async_to_sync``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic

from langgraph.cache.base import FullKey, Namespace, ValueT
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from checkpoint_pg._runtime.aio import AsyncShell, aopen_conn
from checkpoint_pg._runtime.periodic import PeriodicTask, TaskHandle
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg._runtime.twins import blocking_twin, coroutine_alias
from checkpoint_pg.cache._core import DEFAULT_SWEEP_BATCH, SWEEP_FAILED, CacheCore, logger

__all__ = ["AsyncPostgresCache"]


class AsyncPostgresCache(AsyncShell, CacheCore[ValueT], Generic[ValueT]):
    """LangGraph's node cache (`BaseCache`) in a PostgreSQL table, for ``compile(cache=...)``.

    A node with a ``CachePolicy`` has its writes stored under its namespace and a key LangGraph
    derives from its input; a later run with the same input reads them instead of running the
    node. One statement per batch: `aget` reads every asked key, `aset` upserts every entry.
    An entry past its TTL is never returned; `asweep` deletes expired entries in bounded
    batches, and `start_sweeper` does so periodically.

    Args:
        conn: a psycopg connection or connection pool (blocking calls from other threads run
            on this cache's event loop, as the async savers' do).
        serde: the serializer; LangGraph's `JsonPlusSerializer` (without pickle) by default.
        schema: keyword-only; put the table in this PostgreSQL schema.
        unlogged: keyword-only; True makes `setup()` create (or switch) the table UNLOGGED:
            writes skip the write-ahead log (faster, less I/O), but the table is emptied after
            a server crash and is not copied to standbys. False switches it back; None
            (default) creates an ordinary table and never changes an existing one.
        retry: keyword-only; how transient faults are retried (`checkpoint_pg.retry`).
    """

    _async_hint = "`await cache.aget(...)` (aset, aclear), or `await graph.ainvoke(...)`"

    def __init__(
        self,
        conn: AsyncConnection[Any] | AsyncConnectionPool[Any],
        *,
        serde: SerializerProtocol | None = None,
        schema: str | None = None,
        unlogged: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        CacheCore.__init__(self, serde=serde, schema=schema, unlogged=unlogged)
        self._attach(conn, None, retry)
        self._sweeper = PeriodicTask("cache-sweeper", logger, SWEEP_FAILED)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        pool_size: int | None = None,
        serde: SerializerProtocol | None = None,
        schema: str | None = None,
        unlogged: bool | None = None,
        pooler: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[AsyncPostgresCache[Any]]:
        """A cache on one new connection (or, with `pool_size`, a pool of at most that many),
        closed on exit. A connection that cannot be opened fails at once, saying why."""
        pool = None if pool_size is None else {"max_size": pool_size}
        async with aopen_conn(conn_string, pipeline=False, pool=pool, pooler=pooler) as (
            conn,
            _,
            owned,
        ):
            cache: AsyncPostgresCache[Any] = cls(
                conn, serde=serde, schema=schema, unlogged=unlogged, retry=retry
            )
            cache._owned = owned
            yield cache

    async def setup(self) -> None:
        """Create or migrate the cache table; safe from many processes at once, on every start."""
        await self._run(self._setup_op())

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """The cached values of `keys` that have not expired, in one statement."""
        op = self._get_op(keys)
        return {} if op is None else await self._run(op)

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Store each (value, ttl seconds or None) under its key, in one statement."""
        if (op := self._set_op(pairs)) is not None:
            await self._run(op)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete the entries of `namespaces` (exact namespaces), or every entry with None."""
        if (op := self._clear_op(namespaces)) is not None:
            await self._run(op)

    async def asweep(
        self, *, batch_size: int = DEFAULT_SWEEP_BATCH, max_batches: int | None = None
    ) -> int:
        """Delete expired entries, `batch_size` per statement (each its own transaction), until
        none is left or `max_batches` ran; return how many were deleted."""
        deleted = batches = 0
        while max_batches is None or batches < max_batches:
            count = await self._run(self._sweep_op(batch_size))
            deleted, batches = deleted + count, batches + 1
            if count < batch_size:
                break
        return deleted

    async def start_sweeper(self, interval_seconds: float = 60.0) -> TaskHandle:
        """Sweep expired entries every `interval_seconds` in the background, until stopped."""
        seconds = self._sweep_seconds(interval_seconds)

        async def job() -> None:
            if count := await self.asweep():
                logger.info("cache sweeper deleted %d expired entries", count)

        return self._sweeper.start(job, seconds)

    async def stop_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper; True when it has stopped (or was not running)."""
        return await self._sweeper.stop(timeout)

    # -- the other mode's twins ---------------------------------------------------------------

    asetup = coroutine_alias(setup)
    get = blocking_twin(aget)
    set = blocking_twin(aset)
    clear = blocking_twin(aclear)
    sweep = blocking_twin(asweep)
