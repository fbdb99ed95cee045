"""Retention and thread listing on the savers: sync and async shells over `_retention`.

The logic is in `_retention` (operations) and `retention` (types); these mixins only run the
operations, one batch at a time, and keep a background sweeper (a daemon thread for
`PostgresSaver`, an asyncio task for `AsyncPostgresSaver`, as the stores' TTL sweepers).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from checkpoint_pg._retention import RetentionRun, list_threads_op
from checkpoint_pg._runtime.periodic import PeriodicTask, PeriodicThread
from checkpoint_pg.errors import InvalidRetentionPolicyError
from checkpoint_pg.retention import RetentionPolicy, RetentionReport, ThreadPage, check_duration

if TYPE_CHECKING:
    from checkpoint_pg._runtime.protocol import Operation

logger = logging.getLogger("checkpoint_pg")

Progress = Callable[[int], object]
_SWEEPER = "checkpoint-pg-retention-sweeper"
_SWEEP_FAILED = "retention sweep failed; trying again at the next interval"
T = TypeVar("T")


def _interval(interval: object) -> float:
    return check_duration(interval, "interval", InvalidRetentionPolicyError).total_seconds()


def _check_policy(policy: object) -> RetentionPolicy:
    if not isinstance(policy, RetentionPolicy):
        raise InvalidRetentionPolicyError(
            f"policy must be a RetentionPolicy, not {type(policy).__name__}"
        )
    return policy


def _check_progress(progress: object) -> Progress | None:
    if progress is not None and not callable(progress):
        raise InvalidRetentionPolicyError(
            f"progress must be a callable taking an int, or None, not {type(progress).__name__}"
        )
    return progress


def _log_report(report: RetentionReport) -> None:
    if report.threads_deleted or report.checkpoints_deleted:
        logger.info(
            "retention sweep: %d threads deleted, %d pruned, %d checkpoints deleted in %.2fs",
            report.threads_deleted,
            report.threads_pruned,
            report.checkpoints_deleted,
            report.elapsed_s,
        )


class SyncRetention:
    """`list_threads`, `apply_retention` and the sweeper thread for `PostgresSaver`."""

    schema: str | None
    _retention_sweeper: PeriodicThread | None = None

    if TYPE_CHECKING:

        def _run(self, op: Operation[T]) -> T: ...

    def list_threads(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int = 100,
        after: str | None = None,
        idle_for: timedelta | float | None = None,
    ) -> ThreadPage:
        """One page of threads, by ascending thread_id, with their latest checkpoint and size.

        Args:
            filter: keep threads whose latest checkpoint's metadata contains this (as
                `list(filter=...)` matches).
            limit: threads per page (1 to 10,000).
            after: the previous page's `next_after`.
            idle_for: keep threads whose latest checkpoint is older than this (a timedelta,
                or seconds).
        """
        op = list_threads_op(
            self.schema, filter=filter, limit=limit, after=after, idle_for=idle_for
        )
        page: ThreadPage = self._run(op)
        return page

    def apply_retention(
        self,
        policy: RetentionPolicy,
        progress: Progress | None = None,
        *,
        dry_run: bool = False,
        _stop: threading.Event | None = None,
    ) -> RetentionReport:
        """Apply `policy` to every thread, `policy.batch_size` threads per transaction.

        `progress`, if given, is called after each batch with the number of threads examined
        so far. Safe to run from several processes at once (see `checkpoint_pg._retention`).
        With `dry_run`, each batch is rolled back: the report counts exactly what a real run
        would delete now, and nothing is deleted.
        """
        run = RetentionRun(self.schema, _check_policy(policy), dry_run=dry_run)
        progress = _check_progress(progress)
        while (op := run.next_operation()) is not None:
            examined = run.record(self._run(op))
            if progress is not None:
                progress(examined)
            if _stop is not None and _stop.is_set():
                break
        return run.finish()

    async def alist_threads(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int = 100,
        after: str | None = None,
        idle_for: timedelta | float | None = None,
    ) -> ThreadPage:
        """`list_threads`, run in a worker thread."""
        return await asyncio.to_thread(
            lambda: self.list_threads(filter=filter, limit=limit, after=after, idle_for=idle_for)
        )

    async def aapply_retention(
        self, policy: RetentionPolicy, progress: Progress | None = None, *, dry_run: bool = False
    ) -> RetentionReport:
        """`apply_retention`, run in a worker thread."""
        return await asyncio.to_thread(
            lambda: self.apply_retention(policy, progress, dry_run=dry_run)
        )

    def start_retention_sweeper(
        self, policy: RetentionPolicy, interval: timedelta | float
    ) -> concurrent.futures.Future[None]:
        """Apply `policy` every `interval` (a timedelta or seconds) in a daemon thread.

        The first sweep runs one interval after the start. A failed sweep is logged and tried
        again at the next interval. Returns a future that completes when the sweeper stops
        (cancelling it stops the sweeper); a running sweeper is kept as it is.
        """
        policy = _check_policy(policy)
        seconds = _interval(interval)
        if self._retention_sweeper is None:
            self._retention_sweeper = PeriodicThread(_SWEEPER, logger, _SWEEP_FAILED)
        return self._retention_sweeper.start(
            lambda stop: _log_report(self.apply_retention(policy, _stop=stop)), seconds
        )

    def stop_retention_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread (after its current batch); True once it has stopped."""
        return self._retention_sweeper is None or self._retention_sweeper.stop(timeout)


class AsyncRetention:
    """`alist_threads`, `aapply_retention` and the sweeper task for `AsyncPostgresSaver`."""

    schema: str | None
    _retention_sweeper: PeriodicTask | None = None

    if TYPE_CHECKING:

        async def _run(self, op: Operation[T]) -> T: ...

        def _blocking(self, coro: Coroutine[Any, Any, T]) -> T: ...

    async def alist_threads(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int = 100,
        after: str | None = None,
        idle_for: timedelta | float | None = None,
    ) -> ThreadPage:
        """One page of threads (see `PostgresSaver.list_threads`)."""
        op = list_threads_op(
            self.schema, filter=filter, limit=limit, after=after, idle_for=idle_for
        )
        page: ThreadPage = await self._run(op)
        return page

    async def aapply_retention(
        self, policy: RetentionPolicy, progress: Progress | None = None, *, dry_run: bool = False
    ) -> RetentionReport:
        """Apply `policy` to every thread (see `PostgresSaver.apply_retention`)."""
        run = RetentionRun(self.schema, _check_policy(policy), dry_run=dry_run)
        progress = _check_progress(progress)
        while (op := run.next_operation()) is not None:
            examined = run.record(await self._run(op))
            if progress is not None:
                progress(examined)
        return run.finish()

    def list_threads(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int = 100,
        after: str | None = None,
        idle_for: timedelta | float | None = None,
    ) -> ThreadPage:
        """Blocking twin of `alist_threads`, for callers on other threads."""
        page: ThreadPage = self._blocking(
            self.alist_threads(filter=filter, limit=limit, after=after, idle_for=idle_for)
        )
        return page

    def apply_retention(
        self, policy: RetentionPolicy, progress: Progress | None = None, *, dry_run: bool = False
    ) -> RetentionReport:
        """Blocking twin of `aapply_retention`, for callers on other threads."""
        report: RetentionReport = self._blocking(
            self.aapply_retention(policy, progress, dry_run=dry_run)
        )
        return report

    async def start_retention_sweeper(
        self, policy: RetentionPolicy, interval: timedelta | float
    ) -> asyncio.Task[None]:
        """Apply `policy` every `interval` in a background task (see the sync sweeper)."""
        policy = _check_policy(policy)
        seconds = _interval(interval)
        if self._retention_sweeper is None:
            self._retention_sweeper = PeriodicTask(_SWEEPER, logger, _SWEEP_FAILED)

        async def sweep() -> None:
            _log_report(await self.aapply_retention(policy))

        return self._retention_sweeper.start(sweep, seconds)

    async def stop_retention_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper task; True once it has stopped (or was not running)."""
        return self._retention_sweeper is None or await self._retention_sweeper.stop(timeout)
