# DO NOT EDIT: generated from store/aio.py by tests/tools/async_to_sync.py.
"""`PostgresStore`, the blocking shell around the store core."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from langgraph.store.base import Op, Result, SearchItem, TTLConfig
from psycopg import Connection, Pipeline
from psycopg_pool import ConnectionPool

from checkpoint_pg._runtime.aead import RowBoundEncryption
from checkpoint_pg._runtime.periodic import PeriodicThread, ThreadHandle
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg._runtime.sync import SyncShell, open_conn
from checkpoint_pg._runtime.twins import threaded_twin
from store._batch import Plan
from store._core import (
    DEFAULT_SWEEP_BATCH,
    SWEEP_FAILED,
    StoreCore,
    log_sweep,
    logger,
)
from store._text import SearchChoice, SearchMode

__all__ = ["PostgresStore"]


class PostgresStore(SyncShell, StoreCore):
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
        conn: Connection[Any] | ConnectionPool[Any],
        *,
        pipe: Pipeline | None = None,
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
        self._sweeper = PeriodicThread("store-ttl-sweeper", logger, SWEEP_FAILED)

    @classmethod
    @contextmanager
    def from_conn_string(
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
    ) -> Iterator[PostgresStore]:
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
        with open_conn(conn_string, pipeline=pipeline, pool=pool, pooler=pooler) as (
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

    def setup(self, *, distributed: bool = False) -> None:
        """Create or migrate the tables; safe from many processes at once, on every start.

        `distributed=True` (Citus only) then shards them by namespace (``prefix``), the
        migration tables as reference tables (docs/scaling.md); `CitusUnavailableError`
        without the citus extension.
        """
        self._run(self._setup_op(distributed))

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run a batch of ops in a constant number of round trips (embeddings first)."""
        return self._run_plan(self._plan(ops))

    def search(
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
        return self._searched(self._run_plan(self._plan([op], {0: choice})))

    def _run_plan(self, plan: Plan) -> list[Result]:
        documents: list[list[float]] = []
        queries: list[list[float]] = []
        if self.embeddings is not None:
            if plan.documents:
                documents = self.embeddings.embed_documents([d[3] for d in plan.documents])
            queries = [self.embeddings.embed_query(q) for q in plan.queries]
        return self._run(plan.operation(documents, queries))

    # -- TTL ---------------------------------------------------------------------------------

    def sweep_ttl(self, *, batch_size: int = DEFAULT_SWEEP_BATCH) -> int:
        """Delete expired items in batches of `batch_size`; return how many were deleted."""
        return self._run(self._sweep_op(batch_size))

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> ThreadHandle:
        """Sweep expired items every interval in the background, until stopped."""
        seconds = self._sweep_seconds(sweep_interval_minutes)

        def sweep() -> None:
            log_sweep(self.sweep_ttl())

        return self._sweeper.start(sweep, seconds)

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper; True when it has stopped (or was not running)."""
        return self._sweeper.stop(timeout)

    # -- the other mode's twin ----------------------------------------------------------------

    abatch = threaded_twin(batch)
    asearch = threaded_twin(search)
