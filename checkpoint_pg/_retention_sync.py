# DO NOT EDIT: generated from checkpoint_pg/_retention_aio.py by tests/tools/async_to_sync.py.
"""Retention and thread listing on the savers, run by the blocking shell."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from checkpoint_pg._retention import (
    SWEEP_FAILED,
    SWEEPER,
    Progress,
    RetentionRun,
    checked_policy,
    checked_progress,
    list_threads_op,
    log_report,
    logger,
    sweep_interval,
)
from checkpoint_pg._runtime.periodic import PeriodicThread, Stopping, ThreadHandle
from checkpoint_pg._runtime.twins import threaded_twin
from checkpoint_pg.retention import RetentionPolicy, RetentionReport, ThreadPage

if TYPE_CHECKING:
    from checkpoint_pg._runtime.protocol import Operation, Steps

T = TypeVar("T")


class SyncRetention:
    """Thread listing, retention and the retention sweeper of a saver."""

    schema: str | None
    _retention_sweeper: PeriodicThread | None = None

    if TYPE_CHECKING:

        def _run(self, op: Operation[T]) -> T: ...

        def _on_citus(self) -> Steps[bool]: ...

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
            self.schema,
            filter=filter,
            limit=limit,
            after=after,
            idle_for=idle_for,
            on_citus=self._on_citus,
        )
        page: ThreadPage = self._run(op)
        return page

    def apply_retention(
        self,
        policy: RetentionPolicy,
        progress: Progress | None = None,
        *,
        dry_run: bool = False,
        _stop: Stopping | None = None,
    ) -> RetentionReport:
        """Apply `policy` to every thread, `policy.batch_size` threads per transaction.

        `progress`, if given, is called after each batch with the number of threads examined
        so far. Safe to run from several processes at once (see `checkpoint_pg._retention`).
        With `dry_run`, each batch is rolled back: the report counts exactly what a real run
        would delete now, and nothing is deleted.
        """
        run = RetentionRun(
            self.schema, checked_policy(policy), dry_run=dry_run, on_citus=self._on_citus
        )
        progress = checked_progress(progress)
        while (op := run.next_operation()) is not None:
            examined = run.record(self._run(op))
            if progress is not None:
                progress(examined)
            if _stop is not None and _stop.is_set():
                break
        return run.finish()

    def start_retention_sweeper(
        self, policy: RetentionPolicy, interval: timedelta | float
    ) -> ThreadHandle:
        """Apply `policy` every `interval` (a timedelta or seconds) in the background.

        The first sweep runs one interval after the start. A failed sweep is logged and tried
        again at the next interval. Returns the handle of the background job (cancelling it
        stops the sweeper); a running sweeper is kept as it is.
        """
        policy = checked_policy(policy)
        seconds = sweep_interval(interval)
        if self._retention_sweeper is None:
            self._retention_sweeper = PeriodicThread(SWEEPER, logger, SWEEP_FAILED)
        sweeper = self._retention_sweeper

        def sweep() -> None:
            log_report(self.apply_retention(policy, _stop=sweeper.stopping))

        return sweeper.start(sweep, seconds)

    def stop_retention_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper (after its current batch); True once it has stopped."""
        return self._retention_sweeper is None or self._retention_sweeper.stop(timeout)

    # -- the other mode's twins ---------------------------------------------------------------

    alist_threads = threaded_twin(list_threads)
    aapply_retention = threaded_twin(apply_retention)
