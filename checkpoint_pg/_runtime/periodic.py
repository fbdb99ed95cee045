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

__all__ = ["PeriodicTask", "PeriodicThread"]


class PeriodicThread:
    """Runs ``job(stop)`` every `seconds` in a daemon thread; the first run one interval in.

    `job` gets the stop event so a long job can end early when asked to stop.
    """

    def __init__(self, name: str, logger: logging.Logger, failure: str) -> None:
        self.name = name
        self.logger = logger
        self.failure = failure  # logged with the traceback when a run fails
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(
        self, job: Callable[[threading.Event], object], seconds: float
    ) -> concurrent.futures.Future[None]:
        """Start (unless running) and return a future done when the loop ends.

        Cancelling the future stops the loop.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        stop = self._stop
        future.add_done_callback(lambda f: stop.set() if f.cancelled() else None)
        if self.running:
            return future
        stop.clear()

        def loop() -> None:
            try:
                while not stop.wait(seconds):
                    try:
                        job(stop)
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
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self.thread = None
        return True


class PeriodicTask:
    """Async twin of `PeriodicThread`: awaits ``job()`` every `seconds` in an asyncio task."""

    def __init__(self, name: str, logger: logging.Logger, failure: str) -> None:
        self.name = name
        self.logger = logger
        self.failure = failure
        self.task: asyncio.Task[None] | None = None

    def start(self, job: Callable[[], Awaitable[object]], seconds: float) -> asyncio.Task[None]:
        """Start (unless running) on the running loop; return the task."""
        if self.task is not None and not self.task.done():
            return self.task

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
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.CancelledError:
            return True
        except asyncio.TimeoutError:
            self.task = task
            return False
        return task.done()
