"""`AsyncPostgresSaver`: the asyncio shell around the shared core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

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
from checkpoint_pg._retention_shell import AsyncRetention
from checkpoint_pg._runtime.shell import AsyncShell, connect_async
from checkpoint_pg.retry import RetryPolicy

__all__ = ["AsyncPostgresSaver"]

T = TypeVar("T")


class AsyncPostgresSaver(AsyncRetention, AsyncShell, SaverCore):
    """Async checkpoint saver on PostgreSQL, drop-in for the official `AsyncPostgresSaver`.

    Its blocking methods (`get_tuple`, `put`, …) may be called from other threads while its
    event loop runs; on the loop's own thread they raise, as they would deadlock.
    """

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
    ) -> None:
        super().__init__(
            serde=serde, schema=schema, inline_primitives=inline_primitives, partitions=partitions
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
        pool_size: int = 10,
        pooler: bool | None = None,
        retry: RetryPolicy | None = None,
        partitions: int | None = None,
    ) -> AsyncIterator[AsyncPostgresSaver]:
        """Async twin of `PostgresSaver.from_conn_string`."""
        async with connect_async(
            conn_string, pipeline=pipeline, pool_size=pool_size, pooler=pooler
        ) as (conn, pipe):
            yield cls(conn, pipe, serde=serde, schema=schema, retry=retry, partitions=partitions)

    # -- plumbing ----------------------------------------------------------------------------

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the saver's loop from another thread and wait for it."""
        loop = self.loop
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError(
                "AsyncPostgresSaver's blocking methods need its event loop running in another "
                "thread; use the async methods (aget_tuple, aput, …) instead"
            )
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            coro.close()
            raise asyncio.InvalidStateError(
                "Synchronous calls to AsyncPostgresSaver are only allowed from a different "
                "thread. From the main thread, use the async interface. For example, use "
                "`checkpointer.alist(...)` or `await graph.ainvoke(...)`."
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    # -- async API ---------------------------------------------------------------------------

    async def setup(self) -> None:
        """Create or migrate the tables; safe to call from many processes, on every start."""
        await self._run(self._setup_op())

    async def asetup(self) -> None:
        """Alias of `setup`, for symmetry with the other async methods."""
        await self.setup()

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Each channel's writes along the parent chain and its seed value, in one statement."""
        if not channels:
            return {}
        return await self._run(self._delta_history_op(config, channels))

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

    # -- blocking API, for callers on other threads -----------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._blocking(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        pager = self._list_pager(config, filter=filter, before=before, limit=limit)
        while (op := pager.next_operation()) is not None:
            yield from self._blocking(self._run(op))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._blocking(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._blocking(self.aput_writes(config, writes, task_id, task_path))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self._blocking(self.aget_delta_channel_history(config=config, channels=channels))

    def delete_thread(self, thread_id: str) -> None:
        self._blocking(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._blocking(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._blocking(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._blocking(self.aprune(thread_ids, strategy=strategy))
