"""Let one async test body exercise the sync saver too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver


class AsyncFacade(Protocol):
    serde: Any

    async def aget_tuple(self, config: Any) -> Any: ...
    def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]: ...
    async def aput(self, config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any: ...
    async def aput_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None: ...
    async def adelete_thread(self, thread_id: str) -> None: ...
    async def adelete_for_runs(self, run_ids: Any) -> None: ...
    async def acopy_thread(self, source: str, target: str) -> None: ...
    async def aprune(self, thread_ids: Any, *, strategy: str = "keep_latest") -> None: ...
    def get_next_version(self, current: Any, channel: None = None) -> Any: ...


class SyncAsAsync:
    """Async-looking methods that call the sync saver directly."""

    def __init__(self, inner: PostgresSaver) -> None:
        self.inner = inner
        self.serde = inner.serde

    def __repr__(self) -> str:
        return f"SyncAsAsync({self.inner!r})"

    def get_next_version(self, current: Any, channel: None = None) -> Any:
        return self.inner.get_next_version(current, channel)

    async def aget_tuple(self, config: Any) -> Any:
        return self.inner.get_tuple(config)

    async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for item in self.inner.list(config, **kwargs):
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        return self.inner.put(config, checkpoint, metadata, versions)

    async def aput_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        self.inner.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Any) -> None:
        self.inner.delete_for_runs(run_ids)

    async def acopy_thread(self, source: str, target: str) -> None:
        self.inner.copy_thread(source, target)

    async def aprune(self, thread_ids: Any, *, strategy: str = "keep_latest") -> None:
        self.inner.prune(thread_ids, strategy=strategy)


__all__ = ["AsyncFacade", "AsyncPostgresSaver", "SyncAsAsync"]
