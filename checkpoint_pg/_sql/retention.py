"""The list_threads and retention sweep statements, from retention.sql.

A list_threads page varies with the cursor (``>=`` on the first page, ``>`` after one), the
metadata filter and the idle filter; each combination is its own statement text, composed
here from the file's fragments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from psycopg import sql

from checkpoint_pg._sql.tables import compose, load_file, render

__all__ = [
    "RETENTION",
    "RetentionStatements",
    "list_threads_statement",
    "retention_statements_for",
    "thread_candidates_statement",
]

RETENTION = load_file("retention.sql")

# The thread id comparison with the cursor: the first page starts at '' (which sorts first)
# and includes it; a later page starts after the cursor.
_FROM_CURSOR = {True: sql.SQL(">="), False: sql.SQL(">")}


def _checkpoint_ts(schema: str | None, row: str) -> sql.Composed:
    return compose(RETENTION, "checkpoint_ts", schema, row=sql.SQL(row))


def _head_of(schema: str | None, thread: str) -> sql.Composed:
    """The `head_of` fragment for the thread id column `thread`."""
    at = _checkpoint_ts(schema, "h")
    return compose(RETENTION, "head_of", schema, thread=sql.SQL(thread), at=at)


def _thread_ids(schema: str | None, first: bool) -> sql.Composed:
    return compose(RETENTION, "thread_ids", schema, cmp=_FROM_CURSOR[first])


@cache
def list_threads_statement(
    schema: str | None, *, first: bool, metadata: bool, idle: bool, one_thread: bool = False
) -> str:
    """The `list_threads` page query for one combination of arguments; `one_thread`: the
    walk for the thread_id parameter alone, Citus's step 2 (see thread_candidates)."""
    conditions = []
    if metadata:
        conditions.append(compose(RETENTION, "head_matches_metadata", schema))
    if idle:
        conditions.append(compose(RETENTION, "head_is_idle", schema))
    thread_ids = _thread_ids(schema, first)
    head = _head_of(schema, "cand.thread_id" if metadata else "ids.thread_id")
    stats = compose(RETENTION, "thread_stats", schema, thread=sql.SQL("p.thread_id"))
    if one_thread:
        metadata = False  # the walk of one thread, its head matched as any condition
        thread_ids = compose(RETENTION, "one_thread_id", schema)
        head = _head_of(schema, "%(thread_id)s")
        stats = compose(RETENTION, "thread_stats", schema, thread=sql.SQL("%(thread_id)s"))
    return render(
        RETENTION,
        "list_threads_by_metadata" if metadata else "list_threads_walk",
        schema,
        thread_ids=thread_ids,
        cmp=_FROM_CURSOR[first],
        head=head,
        conditions=sql.Composed([sql.SQL(" AND ") + condition for condition in conditions]),
        thread_stats=stats,
    )


@cache
def thread_candidates_statement(schema: str | None, *, first: bool, metadata: bool) -> str:
    """list_threads on Citus, step 1: the next thread ids (see thread_candidates)."""
    candidate_filter = sql.SQL(
        "AND c.metadata @> %(metadata)s AND c.checkpoint_ns = ''" if metadata else ""
    )
    return render(
        RETENTION,
        "thread_candidates",
        schema,
        cmp=_FROM_CURSOR[first],
        candidate_filter=candidate_filter,
    )


@dataclass(frozen=True)
class RetentionStatements:
    """The statements of one retention batch, see checkpoint_pg/_retention.py."""

    pick_first: str
    pick_after: str
    pick_one: str
    lock_threads: str
    delete_idle: str
    verify: str
    savepoint: str
    rollback_to_savepoint: str
    dry_run_savepoint: str
    dry_run_rollback: str


def _pick(schema: str | None, first: bool, one_thread: bool = False) -> str:
    thread = "%(thread_id)s" if one_thread else "ids.thread_id"
    thread_ids = (
        compose(RETENTION, "one_thread_id", schema) if one_thread else _thread_ids(schema, first)
    )
    return render(
        RETENTION,
        "retention_pick",
        schema,
        thread_ids=thread_ids,
        thread=sql.SQL(thread),
        head=_head_of(schema, thread),
        head_is_idle=compose(RETENTION, "head_is_idle", schema),
    )


@cache
def retention_statements_for(schema: str | None) -> RetentionStatements:
    """The retention sweep statements for `schema`."""
    return RetentionStatements(
        pick_first=_pick(schema, first=True),
        pick_after=_pick(schema, first=False),
        pick_one=_pick(schema, first=True, one_thread=True),
        lock_threads=render(RETENTION, "lock_threads", schema),
        delete_idle=render(
            RETENTION, "retention_delete_idle", schema, k_at=_checkpoint_ts(schema, "k")
        ),
        verify=render(RETENTION, "retention_verify", schema),
        savepoint=render(RETENTION, "savepoint", schema),
        rollback_to_savepoint=render(RETENTION, "rollback_to_savepoint", schema),
        dry_run_savepoint=render(RETENTION, "dry_run_savepoint", schema),
        dry_run_rollback=render(RETENTION, "dry_run_rollback", schema),
    )
