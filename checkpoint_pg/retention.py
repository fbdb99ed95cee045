"""Checkpoint retention and thread listing: the public types (pure, no I/O).

- `RetentionPolicy` says what a sweep removes: whole threads idle for longer than `idle_for`
  (by their latest checkpoint's ``ts``), and/or every checkpoint but the newest `keep_latest`
  of each namespace of the other threads (DeltaChannel-aware, like ``prune("keep_latest")``;
  finished subgraph calls of deleted steps go whole).
- `RetentionReport` says what a sweep did.
- `ThreadInfo` / `ThreadPage` are what ``saver.list_threads(...)`` returns.

The savers apply a policy with ``apply_retention(policy)`` (one call, every thread, in bounded
batches) or keep applying it with ``start_retention_sweeper(policy, interval)``; see
`checkpoint_pg._retention` for how a batch runs and why several sweepers can run at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from checkpoint_pg._runtime.limits import INT_MAX, MAX_AGE, MAX_AGE_TEXT
from checkpoint_pg.errors import InvalidConfigError, InvalidRetentionPolicyError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "MAX_THREADS_PAGE",
    "RetentionPolicy",
    "RetentionReport",
    "ThreadInfo",
    "ThreadPage",
]

DEFAULT_BATCH_SIZE = 100
# Each thread a batch works on holds one advisory lock until the batch commits; the server's
# shared lock table holds max_locks_per_transaction x max_connections (6,400 by default).
MAX_BATCH_SIZE = 1000
MAX_THREADS_PAGE = 10_000


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_duration(value: object, what: str, error: type[Exception]) -> timedelta:
    """`value` as a positive `timedelta` (a timedelta, or a number of seconds) of at most
    `MAX_AGE`: an older instant than that is out of the range of a timestamp."""
    too_long = f"{what} is longer than the {MAX_AGE_TEXT} a duration may span, got {value!r}"
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise error(f"{what} must be a finite number of seconds, got {value!r}")
        if value > MAX_AGE.total_seconds():
            raise error(too_long)
        duration = timedelta(seconds=value)
    else:
        raise error(
            f"{what} must be a datetime.timedelta or a number of seconds, "
            f"not {type(value).__name__}"
        )
    if duration <= timedelta(0):
        raise error(f"{what} must be positive, got {duration}")
    if duration > MAX_AGE:
        raise error(too_long)
    return duration


@dataclass(frozen=True)
class RetentionPolicy:
    """What a retention sweep deletes. At least one of `idle_for` and `keep_latest` is set.

    Args:
        idle_for: delete every thread (all namespaces, checkpoints, blobs and writes) whose
            latest checkpoint was saved longer ago than this (a `timedelta`, or seconds).
            "Saved" is the checkpoint's own ``ts`` (the time LangGraph reports as
            ``StateSnapshot.created_at``), compared with the database server's clock.
            A checkpoint whose ``ts`` cannot be read counts as recent: never deleted for idleness.
        keep_latest: in every other thread, keep the newest N checkpoints of each namespace and
            what they need (DeltaChannel ancestors back to a stored value, pre-v4 parents with
            pending sends, referenced blobs); delete the rest. A subgraph call's namespace
            (``name:<task id>``) is deleted whole, its newest checkpoints too, once the
            parent-graph checkpoint that started it is not kept: a finished call of a pruned
            step goes entirely. 1 is ``prune("keep_latest")``, which does the same.
        batch_size: threads examined per batch; each batch is one short transaction.
    """

    idle_for: timedelta | None = None
    keep_latest: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self) -> None:
        if self.idle_for is not None:
            duration = check_duration(self.idle_for, "idle_for", InvalidRetentionPolicyError)
            object.__setattr__(self, "idle_for", duration)
        if self.keep_latest is not None and (
            not _is_int(self.keep_latest) or not 1 <= self.keep_latest <= INT_MAX
        ):
            raise InvalidRetentionPolicyError(
                f"keep_latest must be None or an int from 1 to {INT_MAX} (PostgreSQL's int), "
                f"got {self.keep_latest!r}"
            )
        if not _is_int(self.batch_size) or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise InvalidRetentionPolicyError(
                f"batch_size must be an int from 1 to {MAX_BATCH_SIZE}, got {self.batch_size!r}"
            )
        if self.idle_for is None and self.keep_latest is None:
            raise InvalidRetentionPolicyError(
                "a RetentionPolicy needs idle_for, keep_latest or both: this one deletes nothing"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "idle_for_s": self.idle_for.total_seconds() if self.idle_for is not None else None,
            "keep_latest": self.keep_latest,
            "batch_size": self.batch_size,
        }


@dataclass
class RetentionReport:
    """What one `apply_retention` call (or one sweeper run) did.

    Counts are rows this sweep itself deleted (a row another sweeper deleted first is not
    counted twice). `threads_skipped` are threads another sweeper held or that received a
    checkpoint while this one was deleting them; they are left for the next sweep.
    """

    threads_examined: int = 0
    threads_deleted: int = 0
    threads_pruned: int = 0
    threads_skipped: int = 0
    checkpoints_deleted: int = 0
    blobs_deleted: int = 0
    writes_deleted: int = 0
    batches: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ThreadInfo:
    """One thread as `list_threads` sees it.

    Attributes:
        thread_id: the thread.
        latest_checkpoint_id: its latest checkpoint in the root namespace (or, for a thread
            that has none, in its last namespace).
        latest_ts: when that checkpoint was saved: its ``ts`` (UTC), else the time in its
            uuid6 id, else None.
        checkpoints: its checkpoints, every namespace counted.
        bytes: stored size of its checkpoints, metadata, blobs and writes (`pg_column_size`:
            the bytes on disk after TOAST compression, without row headers and indexes).
        metadata: the latest checkpoint's metadata.
    """

    thread_id: str
    latest_checkpoint_id: str
    latest_ts: datetime | None
    checkpoints: int
    bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: `latest_ts` as an ISO 8601 string."""
        return {
            "thread_id": self.thread_id,
            "latest_checkpoint_id": self.latest_checkpoint_id,
            "latest_ts": self.latest_ts.isoformat() if self.latest_ts else None,
            "checkpoints": self.checkpoints,
            "bytes": self.bytes,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class ThreadPage:
    """One page of `list_threads`: threads by ascending thread_id, and the next page's cursor.

    `next_after` is None on the last page; otherwise pass it as ``after=`` for the next one.
    """

    threads: list[ThreadInfo]
    next_after: str | None

    def __iter__(self) -> Any:
        return iter(self.threads)

    def __len__(self) -> int:
        return len(self.threads)

    def to_dict(self) -> dict[str, Any]:
        return {"threads": [t.to_dict() for t in self.threads], "next_after": self.next_after}


# -- pure helpers used by the core --------------------------------------------------------------

# uuid6 counts 100 ns intervals from the Gregorian reform (1582-10-15).
_UUID_EPOCH_OFFSET = 0x01B21DD213814000


def checkpoint_time(ts: object, checkpoint_id: str) -> datetime | None:
    """When a checkpoint was saved: its ``ts``, else the time in a uuid6 id, else None."""
    if isinstance(ts, str) and ts:
        try:
            parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.astimezone(timezone.utc)
    try:
        uid = UUID(checkpoint_id)
    except (ValueError, TypeError):
        return None
    if uid.version != 6:
        return None
    ticks = ((uid.int >> 96) << 28) | (((uid.int >> 80) & 0xFFFF) << 12) | ((uid.int >> 64) & 0xFFF)
    try:
        return datetime.fromtimestamp((ticks - _UUID_EPOCH_OFFSET) / 1e7, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def check_list_threads_args(
    filter: object, limit: object, after: object, idle_for: object
) -> tuple[dict[str, Any] | None, int, str | None, timedelta | None]:
    """Validate `list_threads` arguments (typed errors at the edge)."""
    if filter is not None and not isinstance(filter, Mapping):
        raise InvalidConfigError(f"filter must be a dict or None, not {type(filter).__name__}")
    if not _is_int(limit) or not 1 <= limit <= MAX_THREADS_PAGE:  # type: ignore[operator]
        raise InvalidConfigError(
            f"limit must be an int from 1 to {MAX_THREADS_PAGE}, got {limit!r}"
        )
    if after is not None and (not isinstance(after, str) or "\x00" in after):
        raise InvalidConfigError("after must be None or a thread id (a string) from next_after")
    duration = None
    if idle_for is not None:
        duration = check_duration(idle_for, "idle_for", InvalidConfigError)
    return (dict(filter) if filter else None), limit, after, duration  # type: ignore[return-value]
