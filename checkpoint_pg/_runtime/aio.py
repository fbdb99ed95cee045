"""Everything in the runtime that waits on the network, written once, for asyncio.

`sync.py` beside it is generated from this file by tests/tools/async_to_sync.py (``async``
and ``await`` dropped, each a-prefixed name swapped with its blocking twin), so the blocking
and async savers and stores run operations exactly alike. Edit this file, then run
``python -m tests.tools.async_to_sync``. What does not wait lives in the mode-free modules:
`protocol` (operations), `driver` (transactions, errors), `shell` (retry decisions, pool
settings), `connect` (why a connection failed).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext, suppress
from typing import Any, TypeVar, cast

import psycopg
from psycopg import AsyncConnection, AsyncCursor, AsyncPipeline
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from checkpoint_pg._runtime import observe
from checkpoint_pg._runtime.concurrency import ALock, asleep
from checkpoint_pg._runtime.connect import (
    failure,
    pool_target,
    reconnect_failure,
    split_options,
)
from checkpoint_pg._runtime.driver import (
    SCHEMA_MISSING,
    ensure_usable,
    needs_transaction,
    prepare_flag,
    read_only_server,
    schema_not_ready,
)
from checkpoint_pg._runtime.errors import ConnectionFailedError
from checkpoint_pg._runtime.protocol import Operation, Query, Rows, Step
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg._runtime.shell import (
    IDLE_CHECK_AFTER,
    TAKEN_AT,
    Retrying,
    connect_args,
    idle_for,
    mark_pooler,
    mark_probed,
    needs_probe,
    pool_args,
    pooler_mark,
    unprepared,
)
from checkpoint_pg._runtime.twins import LoopBridge

__all__ = [
    "AsyncOwnedConnection",
    "AsyncShell",
    "acheck_if_idle",
    "adrive",
    "aopen_conn",
    "apool_failure",
    "aprobe",
    "arun",
    "astamp_new",
]

T = TypeVar("T")


# -- driving an operation ----------------------------------------------------------------------


async def adrive(op: Operation[T], execute: Callable[[Step], Awaitable[Any]]) -> T:
    """Run `op` to completion, `execute` answering each of its steps.

    If `execute` raises, `op.pending` keeps the step that got no answer; a later run of the
    same operation starts again from that step (see `protocol.resumable`).
    """
    steps = op.steps
    answered = op.answered
    try:
        query = next(steps) if op.pending is None else op.pending
        while True:
            try:
                rows = await execute(query)
            except BaseException:
                op.pending, op.answered = query, answered
                raise
            answered += 1
            query = steps.send(rows)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun(
    conn: AsyncConnection[Any], op: Operation[T], pipeline: AsyncPipeline | None = None
) -> T:
    """Run `op` on `conn` and return its result, logged and traced (`observe`)."""
    observation = observe.begin(op)
    if observation is None:
        return await _arun_op(conn, op, pipeline)
    try:
        result = await _arun_op(conn, op, pipeline)
    except BaseException as exc:
        observation.failed(exc)
        raise
    observation.done(result)
    return result


async def _arun_op(
    conn: AsyncConnection[Any], op: Operation[T], pipeline: AsyncPipeline | None
) -> T:
    ensure_usable(conn)
    tx: AbstractAsyncContextManager[Any] = (
        conn.transaction() if needs_transaction(conn, op) else nullcontext()
    )
    cursor: AbstractAsyncContextManager[AsyncCursor[Any]] = (
        nullcontext(_kept_cursor(conn))
        if pipeline is None
        else conn.cursor(binary=True, row_factory=tuple_row)
    )
    try:
        async with cursor as cur, tx:

            async def execute(step: Step) -> Any:
                if isinstance(step, list):
                    return await _arun_together(conn, step)
                await cur.execute(step.sql, step.params, prepare=prepare_flag(conn, step))
                return await cur.fetchall() if step.fetch else []

            result = await adrive(op, execute)
            if pipeline is not None and op.writes:
                await pipeline.sync()
    except SCHEMA_MISSING as exc:
        raise schema_not_ready(exc) from exc
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise read_only_server(conn) from exc
    return result


# The attribute of a connection holding the cursor its operations use (see `_kept_cursor`).
_KEPT_CURSOR = "_checkpoint_pg_cursor"


def _kept_cursor(conn: AsyncConnection[Any]) -> AsyncCursor[Any]:
    """The cursor operations use on `conn`, kept from one operation to the next.

    A new cursor starts with empty adaptation caches (psycopg looks up a dumper for each
    parameter type and a loader for each column again), about 5 % of a `put`'s client
    instructions (benchmarks/RESULTS.md, "put: where the microseconds go"). Only one
    operation uses a connection at a time (the shell's lock, or a pool's checkout); with the
    caller's pipeline, whose results may arrive later, each operation gets its own cursor.
    The cursor keeps its last result until the next operation on the connection.
    """
    cur: AsyncCursor[Any] | None = getattr(conn, _KEPT_CURSOR, None)
    if cur is None or cur.closed:
        cur = conn.cursor(binary=True, row_factory=tuple_row)
        setattr(conn, _KEPT_CURSOR, cur)
    return cur


async def _arun_together(conn: AsyncConnection[Any], queries: list[Query]) -> list[Rows]:
    """A list step: its queries sent in one pipeline, one network round trip."""
    cursors = []
    async with conn.pipeline():
        for query in queries:
            cur = conn.cursor(binary=True, row_factory=tuple_row)
            await cur.execute(query.sql, query.params, prepare=prepare_flag(conn, query))
            cursors.append(cur)
    try:
        return [
            await c.fetchall() if q.fetch else [] for c, q in zip(cursors, queries, strict=True)
        ]
    finally:
        for c in cursors:
            await c.close()


# -- connecting --------------------------------------------------------------------------------


async def aprobe(dsn: str, **kwargs: Any) -> None:
    """Open and close one connection to `dsn`, or raise `ConnectionFailedError` saying why.

    `kwargs` are what `psycopg.connect` takes besides the DSN.
    """
    full, options = split_options(dsn, kwargs)
    try:
        conn = await AsyncConnection.connect(full, **options)
    except psycopg.OperationalError as exc:
        raise failure(exc, full) from None
    await conn.close()


async def apool_failure(pool: Any) -> ConnectionFailedError | None:
    """Why `pool` cannot open a connection (one direct attempt), or None if it can."""
    target = pool_target(pool)
    if target is None:
        return None
    try:
        await aprobe(target[0], **target[1])
    except ConnectionFailedError as exc:
        return exc
    return None


async def astamp_new(conn: AsyncConnection[Any]) -> None:
    """The pools' ``configure``: a new connection counts as idle from its opening."""
    setattr(conn, TAKEN_AT, time.monotonic())


async def acheck_if_idle(conn: AsyncConnection[Any]) -> None:
    """The pools' ``check``: ping a connection only if it sat idle for a while."""
    if idle_for(conn) > IDLE_CHECK_AFTER:
        await AsyncConnectionPool.check_connection(conn)


class AsyncOwnedConnection:
    """The single connection `aopen_conn` opened, which it may therefore replace.

    When that connection is lost (a killed backend, a restarted server, a failover), the shell
    that uses it calls `areopen` (blocking: `reopen`) before its next attempt: a new
    connection with the same DSN and options, the transaction-pooler state of the lost one
    carried over. `current` is the connection to close at the end.
    """

    def __init__(self, dsn: str, kwargs: dict[str, Any], conn: AsyncConnection[Any]) -> None:
        self.dsn = dsn
        self.kwargs = kwargs
        self.current = conn

    async def areopen(self, lost: AsyncConnection[Any]) -> AsyncConnection[Any]:
        """A new connection in place of `lost` (which is closed).

        Raises a plain `psycopg.OperationalError` (a transient fault: the retry policy decides
        whether to try again), its message scrubbed of any secret, when none can be opened.
        """
        pooled = unprepared(lost)
        kwargs = {**self.kwargs, "prepare_threshold": None} if pooled else self.kwargs
        try:
            conn = await AsyncConnection.connect(self.dsn, **kwargs)
        except psycopg.OperationalError as exc:
            raise psycopg.OperationalError(reconnect_failure(exc, self.dsn)) from None
        mark_pooler(conn, pooler_mark(lost))
        self.current = conn
        await lost.close()
        return conn


@asynccontextmanager
async def aopen_conn(
    dsn: str, *, pipeline: bool, pool: dict[str, Any] | None, pooler: bool | None
) -> AsyncIterator[
    tuple[
        AsyncConnection[Any] | AsyncConnectionPool[Any],
        AsyncPipeline | None,
        AsyncOwnedConnection | None,
    ]
]:
    """One connection (pipelined if asked), or with `pool` (its options) a connection pool,
    configured the way this package wants it; the third item is set for a single connection
    that is not pipelined, which the shell may replace when it is lost.

    A connection that cannot be opened fails now, saying why (`ConnectionFailedError`); a pool
    is probed with one direct connection first, so that it does too, not when it times out.
    """
    dsn, kwargs, state = connect_args(dsn, pooler)
    if pool is not None:
        await aprobe(dsn, **kwargs)
        async with AsyncConnectionPool(
            dsn, **pool_args(kwargs, pool, check=acheck_if_idle, configure=astamp_new)
        ) as opened:
            mark_probed(opened)
            mark_pooler(opened, state)
            yield opened, None, None
        return
    try:
        first = await AsyncConnection.connect(dsn, **kwargs)
    except psycopg.OperationalError as exc:
        raise failure(exc, dsn) from None
    mark_pooler(first, state)
    if pipeline:
        async with first as conn, conn.pipeline() as pipe:
            yield conn, pipe, None
        return
    owned = AsyncOwnedConnection(dsn, kwargs, first)
    try:
        yield first, None, owned
    finally:
        await owned.current.close()


# -- the shell of a saver or store -------------------------------------------------------------


# What a shell takes as `conn` (named in the error for anything else).
_ACCEPTED = (AsyncConnection, AsyncConnectionPool)


class AsyncShell(LoopBridge, Retrying):
    """Runs operations on a connection (serialised) or a connection pool (concurrently)."""

    conn: AsyncConnection[Any] | AsyncConnectionPool[Any]
    pipe: AsyncPipeline | None
    lock: ALock
    # Set by `from_conn_string` on the single connection it opened: replaced when lost.
    _owned: AsyncOwnedConnection | None

    def _attach(
        self, conn: Any, pipe: AsyncPipeline | None, retry: RetryPolicy | None = None
    ) -> None:
        if not isinstance(conn, _ACCEPTED):
            accepted = " or ".join(kind.__name__ for kind in _ACCEPTED)
            raise TypeError(f"conn must be a psycopg {accepted}, not {type(conn).__name__}")
        if isinstance(conn, AsyncConnectionPool) and pipe is not None:
            raise ValueError("a pipeline belongs to one connection: it cannot be used with a pool")
        self.conn = conn
        self.pipe = pipe
        self.lock = ALock()
        self._set_retry(retry)
        self._unprobed = isinstance(conn, AsyncConnectionPool)
        self._bind_loop()

    def pool_stats(self) -> dict[str, int] | None:
        """The connection pool's statistics (`observe.POOL_STAT_KEYS`); None without a pool."""
        return observe.pool_stats(self.conn)

    async def _attempt(self, op: Operation[T]) -> T:
        conn = self.conn
        if isinstance(conn, AsyncConnectionPool):
            async with conn.connection() as pooled:
                if unprepared(conn):  # switched (or made so): whatever the connection's age
                    pooled.prepare_threshold = None
                return await arun(pooled, op, self.pipe)
        async with self.lock:
            conn = await self._live_conn()
            # Recorded now, under the lock: once the lock is released, another thread's
            # operation may have the connection in its own transaction.
            if conn.info.transaction_status != TransactionStatus.IDLE:
                op.in_callers_transaction = True
            return await arun(conn, op, self.pipe)

    async def _live_conn(self) -> AsyncConnection[Any]:
        """The single connection (called under the lock). The one `from_conn_string` opened,
        with no pipeline of the caller's on it, is replaced if it was lost, and checked first
        if it sat idle for a while, as a pool checks its connections."""
        conn = cast(AsyncConnection[Any], self.conn)
        owned = self._owned
        if owned is None or owned.current is not conn or self.pipe is not None:
            return conn
        if (
            not conn.broken
            and idle_for(conn) > IDLE_CHECK_AFTER
            and conn.info.transaction_status == TransactionStatus.IDLE
        ):
            with suppress(psycopg.OperationalError):
                await AsyncConnectionPool.check_connection(conn)
        if conn.broken:
            self.conn = conn = await owned.areopen(conn)
        return conn

    async def _run(self, op: Operation[T]) -> T:
        if self._unprobed:
            await self._probe_pool()
        try:
            return await self._attempt(op)
        except Exception as exc:
            return await self._run_again(op, exc)

    async def _probe_pool(self) -> None:
        """A pool that never opened a connection: fail now, with the reason, if it cannot."""
        self._unprobed = False
        if needs_probe(self.conn) and (why := await apool_failure(self.conn)) is not None:
            raise why
        mark_probed(self.conn)

    async def _run_again(self, op: Operation[T], exc: Exception) -> T:
        """Retry `op` after `exc`, as `_plan_retry` and the policy allow."""
        started, attempts = time.monotonic(), 1
        while True:
            if isinstance(exc, PoolTimeout) and (why := await apool_failure(self.conn)):
                raise why from exc
            delay, weed = self._plan_retry(op, exc, attempts, started)
            if weed:
                await self.conn.check()  # type: ignore[union-attr]
            await asleep(delay)
            attempts += 1
            try:
                return await self._attempt(op)
            except Exception as again:
                exc = again
