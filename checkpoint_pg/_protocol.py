"""The sans-I/O protocol between the core and the sync/async shells.

An operation is a generator that yields `Query` objects and receives each query's rows;
its return value is the operation's result. The core writes each operation once; the
sync and async shells only drive it (`drive` / `adrive`), so their behaviour cannot drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
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


def drive(op: Operation[T], execute: Callable[[Step], Any]) -> T:
    """Run `op` to completion with a blocking `execute`."""
    steps = op.steps
    try:
        query = next(steps)
        while True:
            query = steps.send(execute(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(op: Operation[T], execute: Callable[[Step], Awaitable[Any]]) -> T:
    """Run `op` to completion with an awaitable `execute`."""
    steps = op.steps
    try:
        query = next(steps)
        while True:
            query = steps.send(await execute(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def one(query: Query, result: Callable[[Rows], T]) -> Steps[T]:
    """Steps of an operation made of a single query."""
    rows = yield query
    return result(rows)
