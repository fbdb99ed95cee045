"""The sans-I/O protocol between the core and the sync/async shells.

An operation is a generator that yields `Query` objects and receives each query's rows;
its return value is the operation's result. The core writes each operation once; the
sync and async shells only drive it (`sync.drive` / `aio.adrive`), so their behaviour
cannot drift.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

T = TypeVar("T")
Rows = list[tuple[Any, ...]]
# A step is one query (answered with its rows) or a list of queries sent together in one
# pipeline, one network round trip (answered with the rows of each, in order).
Step = Union["Query", list["Query"]]
Steps = Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class Query:
    """One statement to execute, and whether its rows are wanted back."""

    sql: str
    params: Any = None
    fetch: bool = False
    # None: let psycopg decide (prepares after a few runs); False: plan with the actual values.
    prepare: bool | None = None


@dataclass(slots=True)
class Operation(Generic[T]):
    """The steps of one saver call and how the shell must run them."""

    steps: Steps[T]
    # Several statements that must commit together (one statement is atomic on its own).
    transactional: bool = False
    # Whether it changes data (the shell syncs a user's pipeline after it).
    writes: bool = False
    # What logs and traces call it (``checkpoint_pg.put``, ``store.batch``…); see _observe.py.
    name: str = "checkpoint_pg.operation"
    # Whether running it again after an unknown outcome (the connection was lost while a
    # statement was in flight: it may or may not have committed) leaves the same data as
    # running it once. True of every operation of this package: writes are upserts keyed by
    # primary key or insert-if-absent (put, put_writes, store puts, copy_thread), deletes
    # delete the same rows again (delete_thread, delete_for_runs, prune, TTL sweeps, store
    # deletes), reads change nothing, and setup's migrations are guarded by their version
    # table. An operation that is not idempotent must say so: it is then retried only after
    # faults that certainly rolled it back (serialization failure, deadlock).
    idempotent: bool = True
    # Where a failed run stopped, for the shell to resume it on another connection (set only
    # when a step fails, so the success path pays nothing): the step that got no answer and
    # how many steps had been answered before it.
    pending: Step | None = None
    answered: int = 0
    # Set by a shell that found its single connection in a transaction (the caller's) when
    # the operation began: a fault that ends that transaction ends the operation too.
    in_callers_transaction: bool = False


def resumable(op: Operation[Any], in_transaction: bool) -> str | None:
    """None if a failed `op` can be driven again on a new connection, else why it cannot.

    It can when its steps have not finished (a fault after the last answer came while
    committing: there is nothing left to send) and, when its steps ran in one transaction
    (`in_transaction`), when no step had been answered yet (the rolled-back steps' answers
    were consumed and cannot be replayed). Steps that ran each in autocommit stay committed:
    the failed one is simply sent again.
    """
    if inspect.getgeneratorstate(op.steps) == inspect.GEN_CLOSED:
        return "the fault came after its last statement, while committing"
    if in_transaction and op.answered:
        return "the fault came in the middle of its multi-statement transaction"
    return None


def one(query: Query, result: Callable[[Rows], T]) -> Steps[T]:
    """Steps of an operation made of a single query."""
    rows = yield query
    return result(rows)
