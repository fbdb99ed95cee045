"""A job run every interval in the background: a daemon thread or an asyncio task.

The store's TTL sweeper and the savers' retention sweeper are the same loop (wait an
interval, run the job, log a failure and carry on, stop on request); this module is that
loop once, for the blocking and the async shells.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["PeriodicTask", "PeriodicThread", "Stopping", "TaskHandle", "ThreadHandle"]

# What `start` returns: the blocking and async shells name these in their signatures, so
# the blocking module generated from the async one (tests/tools/async_to_sync.py) renames one
# into the other.
ThreadHandle = concurrent.futures.Future[None]
TaskHandle = asyncio.Task[None]


class Stopping(Protocol):
    """A flag a long job checks between steps to end early when its loop is asked to stop."""

    def is_set(self) -> bool: ...


class PeriodicThread:
    """Runs ``job()`` every `seconds` in a daemon thread; the first run one interval in.

    `stopping` is set when the loop is asked to stop, so a long job can end early.
    """

    def __init__(self, name: str, logger: logging.Logger, failure: str) -> None:
        self.name = name
        self.logger = logger
        self.failure = failure  # logged with the traceback when a run fails
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, job: Callable[[], object], seconds: float) -> ThreadHandle:
        """Start (unless running) and return a future done when the loop ends.

        Cancelling the future stops the loop.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        stop = self.stopping
        future.add_done_callback(lambda f: stop.set() if f.cancelled() else None)
        if self.running:
            return future
        stop.clear()

        def loop() -> None:
            try:
                while not stop.wait(seconds):
                    try:
                        job()
                    except Exception:
                        self.logger.exception(self.failure)
            finally:
                if not future.done():
                    future.set_result(None)

        self.thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self.thread.start()
        return future

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the loop to stop (after its current run); True once it has."""
        thread = self.thread
        if thread is None or not thread.is_alive():
            self.thread = None
            return True
        self.stopping.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self.thread = None
        return True


class PeriodicTask:
    """Async twin of `PeriodicThread`: awaits ``job()`` every `seconds` in an asyncio task.

    `stopping` is set when the task is asked to stop, before it is cancelled.
    """

    def __init__(self, name: str, logger: logging.Logger, failure: str) -> None:
        self.name = name
        self.logger = logger
        self.failure = failure
        self.task: TaskHandle | None = None
        self.stopping = asyncio.Event()

    def start(self, job: Callable[[], Awaitable[object]], seconds: float) -> TaskHandle:
        """Start (unless running) on the running loop; return the task."""
        if self.task is not None and not self.task.done():
            return self.task
        self.stopping = asyncio.Event()

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except Exception:
                    self.logger.exception(self.failure)

        self.task = asyncio.create_task(loop(), name=self.name)
        return self.task

    async def stop(self, timeout: float | None = None) -> bool:
        """Cancel the task; True once it has ended (or was not running)."""
        task, self.task = self.task, None
        if task is None or task.done():
            return True
        self.stopping.set()
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.CancelledError:
            return True
        except asyncio.TimeoutError:
            self.task = task
            return False
        return task.done()
