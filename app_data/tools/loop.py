"""An event loop in a daemon thread, so that blocking code can use the async data layer.

`app_data` is async (SQLAlchemy's asyncio engine): its pooled connections belong to the event
loop that opened them. A synchronous LangGraph run (``graph.invoke``) calls tools from worker
threads that have no loop, so the tools send their units of work to one loop that owns the
`Database` for its whole life: this one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["EventLoopThread"]

T = TypeVar("T")


class EventLoopThread:
    """An asyncio loop running in a daemon thread until `close`.

    Args:
        name: the thread's name.
    """

    def __init__(self, name: str = "app-data-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    def owns_current_thread(self) -> bool:
        """Whether the caller runs on this loop's thread (where blocking on it would deadlock)."""
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and block until it finishes; return its result.

        Raises:
            RuntimeError: called from the loop's own thread, or after `close`.
        """
        if self.owns_current_thread():
            coro.close()
            raise RuntimeError("EventLoopThread.run was called from its own loop: await instead")
        if self.closed:
            coro.close()
            raise RuntimeError("the EventLoopThread is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the loop from any other loop (directly when already on it)."""
        if self.owns_current_thread():
            return await coro
        if self.closed:
            coro.close()
            raise RuntimeError("the EventLoopThread is closed")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop and its thread (idempotent); pending work is cancelled."""
        if self._closed:
            return
        if self.owns_current_thread():
            raise RuntimeError("an EventLoopThread cannot be closed from its own loop")
        self._closed = True

        async def cancel_pending() -> None:
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_pending(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> EventLoopThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
