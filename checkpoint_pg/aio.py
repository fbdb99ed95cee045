"""`AsyncPostgresSaver`, the asyncio shell around the shared core.

This file is the source of the blocking `PostgresSaver` too: tests/tools/async_to_sync.py
writes `sync.py` from it (``async``/``await`` dropped, names swapped with their twins), so
the two cannot drift. Edit this file, then run ``python -m tests.tools.async_to_sync``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import AsyncConnection, AsyncPipeline
from psycopg_pool import AsyncConnectionPool

from checkpoint_pg._core import SaverCore
from checkpoint_pg._retention_aio import AsyncRetention
from checkpoint_pg._runtime.aead import RowBoundEncryption
from checkpoint_pg._runtime.aio import AsyncShell, aopen_conn
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg._runtime.shell import saver_pool
from checkpoint_pg._runtime.twins import blocking_iter_twin, blocking_twin, coroutine_alias
from checkpoint_pg.errors import DeltaStorageError

__all__ = ["AsyncPostgresSaver"]


class AsyncPostgresSaver(AsyncRetention, AsyncShell, SaverCore):
    """Checkpoint saver on PostgreSQL, drop-in for the official saver of the same name.

    Every method has its twin in the other mode: `get_tuple` and `aget_tuple`, `put` and
    `aput`, … The blocking saver runs its coroutine twins in a worker thread; the async
    saver answers blocking calls made from other threads on its event loop (on the loop's
    own thread they raise, as they would deadlock).

    Args:
        conn: a psycopg connection (any row factory, autocommit or not) or connection pool.
        pipe: an open pipeline of `conn`, to batch with other work (single connection only).
        serde: the serializer; LangGraph's `JsonPlusSerializer` by default.
        schema: keyword-only; put the tables in this PostgreSQL schema instead of the search_path.
        inline_primitives: keyword-only; keep str/int/float/bool/None channel values in the
            checkpoint's JSONB (the official format). Default: yes, unless `serde` is an
            `EncryptedSerializer`, whose protection that plain-text JSON would bypass.
        retry: keyword-only; how transient faults are retried (`checkpoint_pg.retry`): None
            for the default `RetryPolicy`, `RetryPolicy.never()` to surface every fault.
        partitions: keyword-only; `setup()` creates the checkpoint tables hash-partitioned by
            ``thread_id`` into this many partitions (docs/scaling.md). Existing unpartitioned
            tables are never converted: `setup()` raises `SchemaMismatchError` instead.
        encryption: keyword-only; a `RowBoundEncryption` keyring: every channel value and
            write is sealed with AES-GCM to the row it belongs to, and the checkpoint's JSONB
            and metadata are authenticated; a value that is unencrypted, altered or moved from
            another row raises `TamperedValueError` on load. None (default) keeps the official
            format. The threat model is in `checkpoint_pg.encryption`.
        compression: keyword-only; ``"lz4"`` makes `setup()` switch the value columns (blobs,
            writes, checkpoints, every partition) to lz4 TOAST compression: faster to write and
            read, but more bytes than the default pglz on prose-like text. ``"pglz"`` switches
            them back. None (default) leaves the setting alone: the server's default (pglz),
            as the official tables have. It applies to values written from then on.
        storage: keyword-only; ``"official"`` (default) writes the official format, byte for
            byte. ``"delta"`` stores a list value (an ``add_messages`` or ``operator.add``
            channel) that extends the channel's previous version as its new elements only,
            so a long thread grows linearly instead of quadratically. The official package
            cannot read such rows; ``checkpoint-pg convert-storage`` converts threads both ways. The
            format, snapshot policy and limits are in `checkpoint_pg._delta`.
    """

    _async_hint = "for example `checkpointer.alist(...)` or `await graph.ainvoke(...)`"

    def __init__(
        self,
        conn: AsyncConnection[Any] | AsyncConnectionPool[Any],
        pipe: AsyncPipeline | None = None,
        serde: SerializerProtocol | None = None,
        *,
        schema: str | None = None,
        inline_primitives: bool | None = None,
        retry: RetryPolicy | None = None,
        partitions: int | None = None,
        encryption: RowBoundEncryption | None = None,
        compression: str | None = None,
        storage: str = "official",
    ) -> None:
        super().__init__(
            serde=serde,
            schema=schema,
            inline_primitives=inline_primitives,
            partitions=partitions,
            encryption=encryption,
            compression=compression,
            storage=storage,
        )
        self._attach(conn, pipe, retry)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        pipeline: bool = False,
        serde: SerializerProtocol | None = None,
        schema: str | None = None,
        pool_size: int | None = None,
        pooler: bool | None = None,
        retry: RetryPolicy | None = None,
        partitions: int | None = None,
        encryption: RowBoundEncryption | None = None,
        compression: str | None = None,
        storage: str = "official",
    ) -> AsyncIterator[AsyncPostgresSaver]:
        """A saver on one new connection, as the official saver has it (or on a pool).

        ``saver.conn`` is that `AsyncConnection` (autocommit, ``dict_row`` rows), usable
        as on the official saver: ``saver.conn.pipeline()``, ``.execute()``, ``.info``... A
        connection that cannot be opened fails at once with libpq's reason
        (`ConnectionFailedError`). When the connection is lost (a killed backend, a restart,
        a failover), the saver opens a new one before its next statement and retries the
        operation, unless it ran inside the caller's own pipeline or transaction (with
        ``pipeline=True`` the connection is never replaced: its pipeline would go with it).

        Args:
            conn_string: libpq URL or key=value DSN.
            pipeline: the connection in pipeline mode, like the official saver's option.
            pool_size: a connection pool of at most this many connections instead of one
                connection, for concurrent runs (``saver.conn`` is then the pool).
            pooler: behind PgBouncer/Supavisor in transaction mode: no prepared statements.
                None (default) decides by the port: 6432 and 6543, or the ports listed in
                ``$CHECKPOINT_PG_POOLED_PORTS``, are taken as transaction poolers.
        """
        pool = saver_pool(pool_size, pipeline)
        async with aopen_conn(conn_string, pipeline=pipeline, pool=pool, pooler=pooler) as (
            conn,
            pipe,
            owned,
        ):
            saver = cls(
                conn,
                pipe,
                serde=serde,
                schema=schema,
                retry=retry,
                partitions=partitions,
                encryption=encryption,
                compression=compression,
                storage=storage,
            )
            saver._owned = owned
            yield saver

    # -- BaseCheckpointSaver ------------------------------------------------------------------

    async def setup(self, *, distributed: bool = False) -> None:
        """Create or migrate the tables; safe to call from many processes, on every start.

        `distributed=True` (Citus only) then shards them by ``thread_id`` (docs/scaling.md).
        """
        await self._run(self._setup_op(distributed))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` names (or the thread's latest), with its pending writes."""
        return await self._run(self._get_tuple_op(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, fetched page by page (no connection held between pages)."""
        pager = self._list_pager(config, filter=filter, before=before, limit=limit)
        while (op := pager.next_operation()) is not None:
            for item in await self._run(op):
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its new channel blobs in one statement."""
        return await self._run(self._put_op(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes for a checkpoint in one statement (none for no writes)."""
        if (op := self._put_writes_op(config, writes, task_id, task_path)) is not None:
            await self._run(op)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Each channel's writes along the parent chain and its seed value, in one statement."""
        if not channels:
            return {}
        if self.encryption is not None:
            # The walk through get_tuple: each ancestor's values opened against their rows.
            return await super().aget_delta_channel_history(config=config, channels=channels)
        try:
            return await self._run(self._delta_history_op(config, channels))
        except DeltaStorageError:
            if self.storage != "delta":
                raise
            # A seed stored as a delta (a list channel that became a DeltaChannel): the walk
            # through get_tuple, which rebuilds it.
            return await super().aget_delta_channel_history(config=config, channels=channels)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and write of a thread, atomically."""
        await self._run(self._delete_thread_op(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the given runs created, with their writes and orphaned blobs."""
        if (op := self._delete_for_runs_op(run_ids)) is not None:
            await self._run(op)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's whole history (checkpoints, blobs, writes) to another thread id."""
        await self._run(self._copy_thread_op(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``"delete"`` everything, or ``"keep_latest"`` (DeltaChannel-aware)."""
        if (op := self._prune_op(thread_ids, strategy)) is not None:
            await self._run(op)

    # -- the other mode's twins ---------------------------------------------------------------

    asetup = coroutine_alias(setup)
    get_tuple = blocking_twin(aget_tuple)
    list = blocking_iter_twin(alist)
    put = blocking_twin(aput)
    put_writes = blocking_twin(aput_writes)
    get_delta_channel_history = blocking_twin(aget_delta_channel_history)
    delete_thread = blocking_twin(adelete_thread)
    delete_for_runs = blocking_twin(adelete_for_runs)
    copy_thread = blocking_twin(acopy_thread)
    prune = blocking_twin(aprune)
