# DO NOT EDIT: generated from checkpoint_pg/cache/aio.py by tests/tools/async_to_sync.py.
"""`PostgresCache`, the blocking shell around the cache core."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic

from langgraph.cache.base import FullKey, Namespace, ValueT
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import Connection
from psycopg_pool import ConnectionPool

from checkpoint_pg._runtime.periodic import PeriodicThread, ThreadHandle
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg._runtime.sync import SyncShell, open_conn
from checkpoint_pg._runtime.twins import threaded_twin
from checkpoint_pg.cache._core import DEFAULT_SWEEP_BATCH, SWEEP_FAILED, CacheCore, logger

__all__ = ["PostgresCache"]


class PostgresCache(SyncShell, CacheCore[ValueT], Generic[ValueT]):
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
        conn: Connection[Any] | ConnectionPool[Any],
        *,
        serde: SerializerProtocol | None = None,
        schema: str | None = None,
        unlogged: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        CacheCore.__init__(self, serde=serde, schema=schema, unlogged=unlogged)
        self._attach(conn, None, retry)
        self._sweeper = PeriodicThread("cache-sweeper", logger, SWEEP_FAILED)

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        pool_size: int | None = None,
        serde: SerializerProtocol | None = None,
        schema: str | None = None,
        unlogged: bool | None = None,
        pooler: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> Iterator[PostgresCache[Any]]:
        """A cache on one new connection (or, with `pool_size`, a pool of at most that many),
        closed on exit. A connection that cannot be opened fails at once, saying why."""
        pool = None if pool_size is None else {"max_size": pool_size}
        with open_conn(conn_string, pipeline=False, pool=pool, pooler=pooler) as (
            conn,
            _,
            owned,
        ):
            cache: PostgresCache[Any] = cls(
                conn, serde=serde, schema=schema, unlogged=unlogged, retry=retry
            )
            cache._owned = owned
            yield cache

    def setup(self) -> None:
        """Create or migrate the cache table; safe from many processes at once, on every start."""
        self._run(self._setup_op())

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """The cached values of `keys` that have not expired, in one statement."""
        op = self._get_op(keys)
        return {} if op is None else self._run(op)

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Store each (value, ttl seconds or None) under its key, in one statement."""
        if (op := self._set_op(pairs)) is not None:
            self._run(op)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete the entries of `namespaces` (exact namespaces), or every entry with None."""
        if (op := self._clear_op(namespaces)) is not None:
            self._run(op)

    def sweep(
        self, *, batch_size: int = DEFAULT_SWEEP_BATCH, max_batches: int | None = None
    ) -> int:
        """Delete expired entries, `batch_size` per statement (each its own transaction), until
        none is left or `max_batches` ran; return how many were deleted."""
        deleted = batches = 0
        while max_batches is None or batches < max_batches:
            count = self._run(self._sweep_op(batch_size))
            deleted, batches = deleted + count, batches + 1
            if count < batch_size:
                break
        return deleted

    def start_sweeper(self, interval_seconds: float = 60.0) -> ThreadHandle:
        """Sweep expired entries every `interval_seconds` in the background, until stopped."""
        seconds = self._sweep_seconds(interval_seconds)

        def job() -> None:
            if count := self.sweep():
                logger.info("cache sweeper deleted %d expired entries", count)

        return self._sweeper.start(job, seconds)

    def stop_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper; True when it has stopped (or was not running)."""
        return self._sweeper.stop(timeout)

    # -- the other mode's twins ---------------------------------------------------------------

    asetup = threaded_twin(setup)
    aget = threaded_twin(get)
    aset = threaded_twin(set)
    aclear = threaded_twin(clear)
    asweep = threaded_twin(sweep)
