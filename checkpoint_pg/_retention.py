"""Retention sweeps and thread listing as I/O-free operations (the shells run them).

A sweep walks every thread in thread_id order, `batch_size` threads per batch, each batch one
short transaction (no lock is held between batches):

1. pick: the next threads from the cursor (one index probe each), whether each is idle
   (its latest checkpoint's ``ts`` older than ``now() - idle_for``) and whether keep_latest has
   anything to prune in it; the ones with work are locked with ``pg_try_advisory_xact_lock``
   (keyed by schema and thread id). A thread another sweeper holds is skipped, never waited
   for, so sweepers in many processes never block or deadlock each other, and a thread is
   worked on by one of them at a time.
2. delete the idle threads, re-checking idleness in the delete's own snapshot over every
   checkpoint of every namespace (a thread that received a checkpoint since step 1 stays).
3. verify, in a new snapshot, that no deleted thread has a checkpoint again (a put that
   committed while step 2 ran); if one has, the batch rolls back to a savepoint taken before
   step 2 and deletes again without it, so that put keeps the blobs its checkpoint refers to.
4. keep_latest on the other locked threads: `_prune.keep_latest` with ``keep=N``
   (DeltaChannel-aware; every deleting statement counts only rows it deleted itself).

A dry run (``apply_retention(policy, dry_run=True)``) runs every batch exactly so, inside a
savepoint it rolls back before the batch commits: its counts are what a real run would delete
at that moment, by construction (the same statements), and it changes nothing. Like a real
batch it holds its locks (the advisory locks, the row locks of the rows it deletes) only for
the batch's short transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb

from checkpoint_pg import _prune
from checkpoint_pg._runtime.protocol import Operation, Query, Rows, Steps
from checkpoint_pg._sql import (
    list_threads_statement,
    retention_statements_for,
    thread_candidates_statement,
)
from checkpoint_pg.errors import InvalidRetentionPolicyError
from checkpoint_pg.retention import (
    RetentionPolicy,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    check_duration,
    check_list_threads_args,
    checkpoint_time,
)

__all__ = ["RetentionRun", "list_threads_op"]

# A listing walks threads until its page is full: no bound on how many it looks at.
_UNBOUNDED = 2**31 - 1
# How many times a batch deletes again after puts raced it, before it leaves its idle threads.
_RACE_ATTEMPTS = 3


def lock_prefix(schema: str | None) -> str:
    """The advisory lock key prefix of one schema's retention (locks are per database)."""
    return f"checkpoint_pg.retention:{schema or ''}:"


def list_threads_op(
    schema: str | None,
    *,
    filter: Mapping[str, Any] | None,
    limit: int,
    after: str | None,
    idle_for: timedelta | float | None,
    on_citus: Callable[[], Steps[bool]],
) -> Operation[ThreadPage]:
    """One page of threads: one statement, one round trip (on Citus, two: see
    `_citus_thread_rows`)."""
    metadata, limit, after, idle = check_list_threads_args(filter, limit, after, idle_for)
    params: dict[str, Any] = {"after": after or "", "limit": limit + 1, "scan": _UNBOUNDED}
    if metadata is not None:
        params["metadata"] = Jsonb(metadata)
    if idle is not None:
        params["idle_for"] = idle
    shape = {"first": after is None, "metadata": metadata is not None, "idle": idle is not None}

    def steps() -> Steps[ThreadPage]:
        if (yield from on_citus()):
            rows = yield from _citus_thread_rows(schema, params, **shape)
        else:
            sql = list_threads_statement(schema, **shape)
            rows = yield Query(sql, params, fetch=True)
        return _thread_page(rows, limit)

    return Operation(steps(), name="checkpoint_pg.list_threads")


def _thread_page(rows: Rows, limit: int) -> ThreadPage:
    more = len(rows) > limit
    threads = [
        ThreadInfo(
            thread_id=thread_id,
            latest_checkpoint_id=checkpoint_id,
            latest_ts=checkpoint_time(ts, checkpoint_id),
            checkpoints=int(n),
            bytes=int(size),
            metadata=dict(meta or {}),
        )
        for thread_id, checkpoint_id, ts, meta, n, size in rows[:limit]
    ]
    return ThreadPage(threads, threads[-1].thread_id if more else None)


_CITUS_CHUNK = 100


def _citus_thread_rows(
    schema: str | None, params: dict[str, Any], *, first: bool, metadata: bool, idle: bool
) -> Steps[Rows]:
    """list_threads on Citus: candidate thread ids from every shard, then each candidate's
    row from its own shard, a chunk's statements sent in one pipeline; repeated while the
    filters leave the page short (retention.sql, thread_candidates)."""
    want = params["limit"]
    walk = list_threads_statement(schema, first=True, metadata=metadata, idle=idle, one_thread=True)
    rows: Rows = []
    after = params["after"]
    while True:
        scan = max(want, _CITUS_CHUNK)
        candidates = yield Query(
            thread_candidates_statement(schema, first=first, metadata=metadata),
            {**params, "after": after, "scan": scan},
            fetch=True,
        )
        if not candidates:
            return rows
        answers = yield [
            Query(walk, {**params, "thread_id": thread_id, "limit": 1}, fetch=True)
            for (thread_id,) in candidates
        ]
        for answer in answers:
            rows.extend(answer)
        if len(rows) >= want or len(candidates) < scan:
            return rows[:want]
        after, first = candidates[-1][0], False


@dataclass
class BatchResult:
    """What one batch did (merged into the report once its transaction committed)."""

    examined: int = 0
    deleted: int = 0
    pruned: int = 0
    skipped: int = 0
    checkpoints: int = 0
    blobs: int = 0
    writes: int = 0
    next_after: str | None = None
    deleted_ids: list[str] = field(default_factory=list)


class RetentionRun:
    """One sweep over every thread: the next batch's operation, and the report so far."""

    def __init__(
        self,
        schema: str | None,
        policy: RetentionPolicy,
        *,
        dry_run: bool = False,
        on_citus: Callable[[], Steps[bool]] | None = None,
    ) -> None:
        if not isinstance(policy, RetentionPolicy):
            raise InvalidRetentionPolicyError(
                f"policy must be a RetentionPolicy, not {type(policy).__name__}"
            )
        self.schema = schema
        self.policy = policy
        self.dry_run = dry_run
        self._on_citus = on_citus
        self.report = RetentionReport()
        self._after: str | None = None
        self._done = False
        self._started = time.monotonic()

    def next_operation(self) -> Operation[BatchResult] | None:
        """The next batch, or None when every thread has been examined."""
        if self._done:
            return None
        return Operation(
            self._batch(self._after),
            transactional=True,
            writes=True,
            name="checkpoint_pg.retention_batch",
        )

    def record(self, result: BatchResult) -> int:
        """Account for a committed batch; returns how many threads were examined so far."""
        r = self.report
        r.batches += 1
        r.threads_examined += result.examined
        r.threads_deleted += result.deleted
        r.threads_pruned += result.pruned
        r.threads_skipped += result.skipped
        r.checkpoints_deleted += result.checkpoints
        r.blobs_deleted += result.blobs
        r.writes_deleted += result.writes
        r.elapsed_s = time.monotonic() - self._started
        self._after = result.next_after
        self._done = result.next_after is None
        return r.threads_examined

    def finish(self) -> RetentionReport:
        self.report.elapsed_s = time.monotonic() - self._started
        return self.report

    def _batch(self, after: str | None) -> Steps[BatchResult]:
        if not self.dry_run:
            return (yield from self._work(after))
        sql = retention_statements_for(self.schema)
        yield Query(sql.dry_run_savepoint)
        result = yield from self._work(after)
        yield Query(sql.dry_run_rollback)
        return result

    def _work(self, after: str | None) -> Steps[BatchResult]:
        policy = self.policy
        citus = self._on_citus is not None and (yield from self._on_citus())
        picked = yield from (self._citus_pick(after) if citus else self._pick(after))
        result = BatchResult(examined=len(picked))
        if len(picked) >= policy.batch_size:
            result.next_after = picked[-1][0]
        idle = [t for t, is_idle, _, locked in picked if locked and is_idle]
        prunable = [t for t, is_idle, prunable, locked in picked if locked and not is_idle]
        result.skipped = sum(1 for _, i, p, locked in picked if (i or p) and not locked)
        # Citus routes the deleting statements one thread at a time (retention.sql).
        for group in _prune.thread_groups(idle, one_at_a_time=citus):
            yield from self._delete_idle(group, result)
            # An idle thread that turned out active (a recent checkpoint somewhere) and still
            # holds old checkpoints is pruned like the others.
            if policy.keep_latest is not None:
                gone = set(result.deleted_ids)
                prunable += [t for t in idle if t not in gone]
        if prunable and policy.keep_latest is not None:
            for group in _prune.thread_groups(prunable, one_at_a_time=citus):
                counts = yield from _prune.keep_latest(self.schema, group, policy.keep_latest)
                result.pruned += counts.threads
                result.checkpoints += counts.checkpoints
                result.writes += counts.writes
                result.blobs += counts.blobs
        return result

    def _pick_params(self, after: str | None) -> dict[str, Any]:
        return {
            "after": after or "",
            "scan": self.policy.batch_size,
            "idle_for": self.policy.idle_for,
            "keep": self.policy.keep_latest,
            "lock_prefix": lock_prefix(self.schema),
        }

    def _pick(self, after: str | None) -> Steps[Rows]:
        sql = retention_statements_for(self.schema)
        statement = sql.pick_first if after is None else sql.pick_after
        rows: Rows = yield Query(statement, self._pick_params(after), fetch=True)
        return rows

    def _citus_pick(self, after: str | None) -> Steps[Rows]:
        """The pick on Citus: the batch's threads from every shard, then each one's pick row
        from its own shard, all sent in one pipeline (retention.sql, retention_pick)."""
        params = self._pick_params(after)
        first = after is None
        candidates = yield Query(
            thread_candidates_statement(self.schema, first=first, metadata=False),
            params,
            fetch=True,
        )
        if not candidates:
            return []
        pick_one = retention_statements_for(self.schema).pick_one
        answers = yield [
            Query(pick_one, {**params, "thread_id": thread_id}, fetch=True)
            for (thread_id,) in candidates
        ]
        # A thread deleted since step 1 has no row: nothing to do (the batch stays full-size,
        # so the cursor moves on as on a single server).
        picked = [
            answer[0][:3] if answer else (thread_id, False, False)
            for (thread_id,), answer in zip(candidates, answers, strict=True)
        ]
        busy = [thread_id for thread_id, idle, prunable in picked if idle or prunable]
        locks = yield Query(
            retention_statements_for(self.schema).lock_threads,
            {**params, "threads": busy},
            fetch=True,
        )
        held = {t for t, (locked,) in zip(busy, locks, strict=True) if locked}
        return [(t, idle, prunable, t in held) for t, idle, prunable in picked]

    def _delete_idle(self, idle: list[str], result: BatchResult) -> Steps[None]:
        sql = retention_statements_for(self.schema)
        threads = list(idle)
        params: dict[str, Any] = {"threads": threads, "idle_for": self.policy.idle_for}
        answers = yield [Query(sql.savepoint), Query(sql.delete_idle, params, fetch=True)]
        for _ in range(_RACE_ATTEMPTS):
            ids, counts, writes, blobs = answers[1][0]
            ids, counts = list(ids or []), list(counts or [])
            if not ids:
                return None
            raced = yield Query(sql.verify, {"threads": ids}, fetch=True)
            if not raced:
                result.deleted += len(ids)
                result.deleted_ids = ids
                result.checkpoints += sum(int(n) for n in counts)
                result.writes += int(writes)
                result.blobs += int(blobs)
                return None
            # Puts landed on threads being deleted: undo the deletion, leave those threads.
            active = {row[0] for row in raced}
            result.skipped += len(active)
            threads = [t for t in threads if t not in active]
            if not threads:  # every one raced: nothing left to delete
                yield Query(sql.rollback_to_savepoint)
                return None
            params["threads"] = threads
            answers = yield [
                Query(sql.rollback_to_savepoint),
                Query(sql.delete_idle, params, fetch=True),
            ]
        # Still racing: give up on this batch's idle threads (the next sweep sees them again).
        yield Query(sql.rollback_to_savepoint)
        result.skipped += len(threads)
        return None


# -- what the blocking and async shells both check and log ---------------------------------------

logger = logging.getLogger("checkpoint_pg")
Progress = Callable[[int], object]
SWEEPER = "checkpoint-pg-retention-sweeper"
SWEEP_FAILED = "retention sweep failed; trying again at the next interval"


def sweep_interval(interval: object) -> float:
    """A sweeper interval (a timedelta or seconds) in seconds, or a typed error."""
    return check_duration(interval, "interval", InvalidRetentionPolicyError).total_seconds()


def checked_policy(policy: object) -> RetentionPolicy:
    if not isinstance(policy, RetentionPolicy):
        raise InvalidRetentionPolicyError(
            f"policy must be a RetentionPolicy, not {type(policy).__name__}"
        )
    return policy


def checked_progress(progress: object) -> Progress | None:
    if progress is not None and not callable(progress):
        raise InvalidRetentionPolicyError(
            f"progress must be a callable taking an int, or None, not {type(progress).__name__}"
        )
    return progress


def log_report(report: RetentionReport) -> None:
    if report.threads_deleted or report.checkpoints_deleted:
        logger.info(
            "retention sweep: %d threads deleted, %d pruned, %d checkpoints deleted in %.2fs",
            report.threads_deleted,
            report.threads_pruned,
            report.checkpoints_deleted,
            report.elapsed_s,
        )
