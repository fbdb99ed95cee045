"""Execute core operations on a psycopg connection: the only place statements are sent.

Works with whatever connection the user hands over: its row factory is ignored (cursors get
their own), and a connection that is not in autocommit mode gets a transaction (or, inside
the user's own transaction, a savepoint) around each operation.
"""

from __future__ import annotations

from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    nullcontext,
)
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, Connection, errors
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from checkpoint_pg._runtime import observe as _observe
from checkpoint_pg._runtime.errors import ConnectionUnusableError, SchemaNotReadyError
from checkpoint_pg._runtime.protocol import Operation, Query, Rows, Step, adrive, drive

T = TypeVar("T")


def ensure_usable(conn: Connection[Any] | AsyncConnection[Any]) -> None:
    """Refuse a closed connection or one stuck in a failed transaction, saying which."""
    if conn.closed:
        raise ConnectionUnusableError("the PostgreSQL connection given to the saver is closed")
    if conn.pgconn.transaction_status == TransactionStatus.INERROR:
        raise ConnectionUnusableError(
            "the PostgreSQL connection given to the saver is in a failed transaction: "
            "roll it back before using the saver"
        )


def _needs_transaction(conn: Connection[Any] | AsyncConnection[Any], op: Operation[Any]) -> bool:
    return op.transactional or not conn.autocommit


def _prepare(conn: Connection[Any] | AsyncConnection[Any], query: Query) -> bool | None:
    """`query.prepare`, except never True on a connection with ``prepare_threshold=None``.

    ``prepare_threshold=None`` is the user's signal that a transaction pooler (PgBouncer,
    Supavisor) sits in between: a statement prepared on one server connection would be missing,
    or another client's, on the next. psycopg honours an explicit ``prepare=True`` even then.
    """
    if conn.prepare_threshold is None:
        return False
    return query.prepare


# Errors with a known remedy, turned into this package's typed errors (`schema_not_ready`).
_SCHEMA_MISSING = (errors.UndefinedTable, errors.UndefinedColumn, errors.UndefinedFunction)


def schema_not_ready(exc: psycopg.Error) -> SchemaNotReadyError:
    return SchemaNotReadyError(
        f"the schema is missing or older than this version ({exc.diag.message_primary}): "
        "call setup() once before using the saver or store"
    )


@_observe.traced
def run(conn: Connection[Any], op: Operation[T], pipeline: psycopg.Pipeline | None = None) -> T:
    """Run `op` on `conn` and return its result."""
    ensure_usable(conn)
    tx: AbstractContextManager[Any] = (
        conn.transaction() if _needs_transaction(conn, op) else nullcontext()
    )
    try:
        with conn.cursor(binary=True, row_factory=tuple_row) as cur, tx:

            def execute(step: Step) -> Any:
                if isinstance(step, list):
                    return _run_together(conn, step)
                cur.execute(step.sql, step.params, prepare=_prepare(conn, step))
                return cur.fetchall() if step.fetch else []

            result = drive(op, execute)
            if pipeline is not None and op.writes:
                pipeline.sync()
    except _SCHEMA_MISSING as exc:
        raise schema_not_ready(exc) from exc
    return result


def _run_together(conn: Connection[Any], queries: list[Query]) -> list[Rows]:
    cursors = []
    with conn.pipeline():
        for query in queries:
            cur = conn.cursor(binary=True, row_factory=tuple_row)
            cur.execute(query.sql, query.params, prepare=_prepare(conn, query))
            cursors.append(cur)
    try:
        return [c.fetchall() if q.fetch else [] for c, q in zip(cursors, queries, strict=True)]
    finally:
        for c in cursors:
            c.close()


@_observe.atraced
async def arun(
    conn: AsyncConnection[Any], op: Operation[T], pipeline: psycopg.AsyncPipeline | None = None
) -> T:
    """Async twin of `run`: same steps, awaited."""
    ensure_usable(conn)
    tx: AbstractAsyncContextManager[Any] = (
        conn.transaction() if _needs_transaction(conn, op) else nullcontext()
    )
    try:
        async with conn.cursor(binary=True, row_factory=tuple_row) as cur, tx:

            async def execute(step: Step) -> Any:
                if isinstance(step, list):
                    return await _arun_together(conn, step)
                await cur.execute(step.sql, step.params, prepare=_prepare(conn, step))
                return await cur.fetchall() if step.fetch else []

            result = await adrive(op, execute)
            if pipeline is not None and op.writes:
                await pipeline.sync()
    except _SCHEMA_MISSING as exc:
        raise schema_not_ready(exc) from exc
    return result


async def _arun_together(conn: AsyncConnection[Any], queries: list[Query]) -> list[Rows]:
    cursors = []
    async with conn.pipeline():
        for query in queries:
            cur = conn.cursor(binary=True, row_factory=tuple_row)
            await cur.execute(query.sql, query.params, prepare=_prepare(conn, query))
            cursors.append(cur)
    try:
        return [
            await c.fetchall() if q.fetch else [] for c, q in zip(cursors, queries, strict=True)
        ]
    finally:
        for c in cursors:
            await c.close()
