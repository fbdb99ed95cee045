"""Run a saver's or a store's operation statement by statement, EXPLAINing each on Citus.

The routing tests drive the very `Operation` a public method builds (its `Query` steps, with
their parameters), so what is explained is exactly what the method sends: each statement is
first EXPLAINed, then executed, and its rows fed back, as a shell would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from checkpoint_pg._runtime.protocol import Operation, Query

_TASKS = re.compile(r"Task Count: (\d+)")


@dataclass(frozen=True)
class ExplainedStatement:
    """One statement an operation sent and the Citus task counts its plan shows."""

    sql: str
    task_counts: tuple[int, ...]

    @property
    def shards(self) -> int:
        """Shards it runs on: the largest task count of its plan (0: Citus never sees it)."""
        return max(self.task_counts, default=0)


def _explain(conn: psycopg.Connection[Any], query: Query) -> ExplainedStatement:
    rows = conn.execute("EXPLAIN (COSTS OFF) " + query.sql, query.params).fetchall()
    plan = "\n".join(str(row[0]) for row in rows)
    return ExplainedStatement(query.sql, tuple(int(n) for n in _TASKS.findall(plan)))


def _answer(conn: psycopg.Connection[Any], query: Query) -> list[tuple[Any, ...]]:
    cursor = conn.execute(query.sql, query.params)
    return cursor.fetchall() if query.fetch else []


def run_explaining(
    conn: psycopg.Connection[Any], op: Operation[Any]
) -> tuple[Any, list[ExplainedStatement]]:
    """Run `op` on `conn` (autocommit), EXPLAINing each statement first; return its result and
    the statements with their plans' task counts."""
    explained: list[ExplainedStatement] = []
    steps = op.steps
    try:
        step = steps.send(None)
        while True:
            queries = step if isinstance(step, list) else [step]
            answers = []
            for query in queries:
                explained.append(_explain(conn, query))
                answers.append(_answer(conn, query))
            step = steps.send(answers if isinstance(step, list) else answers[0])
    except StopIteration as done:
        return done.value, explained
