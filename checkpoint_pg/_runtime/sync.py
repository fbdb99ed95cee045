# DO NOT EDIT: generated from checkpoint_pg/_runtime/aio.py by tests/tools/async_to_sync.py.
"""Everything in the runtime that waits on the network, for blocking callers.

See aio.py, its source, for what lives here and what beside it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any, TypeVar, cast

import psycopg
from psycopg import Connection, Cursor, Pipeline
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from checkpoint_pg._runtime import observe
from checkpoint_pg._runtime.concurrency import Lock, sleep
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
from checkpoint_pg._runtime.twins import ThreadBridge

__all__ = [
    "OwnedConnection",
    "SyncShell",
    "check_if_idle",
    "drive",
    "open_conn",
    "pool_failure",
    "probe",
    "run",
    "stamp_new",
]

T = TypeVar("T")


# -- driving an operation ----------------------------------------------------------------------


def drive(op: Operation[T], execute: Callable[[Step], Awaitable[Any]]) -> T:
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
                rows = execute(query)
            except BaseException:
                op.pending, op.answered = query, answered
                raise
            answered += 1
            query = steps.send(rows)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def run(conn: Connection[Any], op: Operation[T], pipeline: Pipeline | None = None) -> T:
    """Run `op` on `conn` and return its result, logged and traced (`observe`)."""
    observation = observe.begin(op)
    if observation is None:
        return _run_op(conn, op, pipeline)
    try:
        result = _run_op(conn, op, pipeline)
    except BaseException as exc:
        observation.failed(exc)
        raise
    observation.done(result)
    return result


def _run_op(conn: Connection[Any], op: Operation[T], pipeline: Pipeline | None) -> T:
    ensure_usable(conn)
    tx: AbstractContextManager[Any] = (
        conn.transaction() if needs_transaction(conn, op) else nullcontext()
    )
    cursor: AbstractContextManager[Cursor[Any]] = (
        nullcontext(_kept_cursor(conn))
        if pipeline is None
        else conn.cursor(binary=True, row_factory=tuple_row)
    )
    try:
        with cursor as cur, tx:

            def execute(step: Step) -> Any:
                if isinstance(step, list):
                    return _run_together(conn, step)
                cur.execute(step.sql, step.params, prepare=prepare_flag(conn, step))
                return cur.fetchall() if step.fetch else []

            result = drive(op, execute)
            if pipeline is not None and op.writes:
                pipeline.sync()
    except SCHEMA_MISSING as exc:
        raise schema_not_ready(exc) from exc
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise read_only_server(conn) from exc
    return result


# The attribute of a connection holding the cursor its operations use (see `_kept_cursor`).
_KEPT_CURSOR = "_checkpoint_pg_cursor"


def _kept_cursor(conn: Connection[Any]) -> Cursor[Any]:
    """The cursor operations use on `conn`, kept from one operation to the next.

    A new cursor starts with empty adaptation caches (psycopg looks up a dumper for each
    parameter type and a loader for each column again), about 5 % of a `put`'s client
    instructions (benchmarks/RESULTS.md, "put: where the microseconds go"). Only one
    operation uses a connection at a time (the shell's lock, or a pool's checkout); with the
    caller's pipeline, whose results may arrive later, each operation gets its own cursor.
    The cursor keeps its last result until the next operation on the connection.
    """
    cur: Cursor[Any] | None = getattr(conn, _KEPT_CURSOR, None)
    if cur is None or cur.closed:
        cur = conn.cursor(binary=True, row_factory=tuple_row)
        setattr(conn, _KEPT_CURSOR, cur)
    return cur


def _run_together(conn: Connection[Any], queries: list[Query]) -> list[Rows]:
    """A list step: its queries sent in one pipeline, one network round trip."""
    cursors = []
    with conn.pipeline():
        for query in queries:
            cur = conn.cursor(binary=True, row_factory=tuple_row)
            cur.execute(query.sql, query.params, prepare=prepare_flag(conn, query))
            cursors.append(cur)
    try:
        return [c.fetchall() if q.fetch else [] for c, q in zip(cursors, queries, strict=True)]
    finally:
        for c in cursors:
            c.close()


# -- connecting --------------------------------------------------------------------------------


def probe(dsn: str, **kwargs: Any) -> None:
    """Open and close one connection to `dsn`, or raise `ConnectionFailedError` saying why.

    `kwargs` are what `psycopg.connect` takes besides the DSN.
    """
    full, options = split_options(dsn, kwargs)
    try:
        conn = Connection.connect(full, **options)
    except psycopg.OperationalError as exc:
        raise failure(exc, full) from None
    conn.close()


def pool_failure(pool: Any) -> ConnectionFailedError | None:
    """Why `pool` cannot open a connection (one direct attempt), or None if it can."""
    target = pool_target(pool)
    if target is None:
        return None
    try:
        probe(target[0], **target[1])
    except ConnectionFailedError as exc:
        return exc
    return None


def stamp_new(conn: Connection[Any]) -> None:
    """The pools' ``configure``: a new connection counts as idle from its opening."""
    setattr(conn, TAKEN_AT, time.monotonic())


def check_if_idle(conn: Connection[Any]) -> None:
    """The pools' ``check``: ping a connection only if it sat idle for a while."""
    if idle_for(conn) > IDLE_CHECK_AFTER:
        ConnectionPool.check_connection(conn)


class OwnedConnection:
    """The single connection `aopen_conn` opened, which it may therefore replace.

    When that connection is lost (a killed backend, a restarted server, a failover), the shell
    that uses it calls `areopen` (blocking: `reopen`) before its next attempt: a new
    connection with the same DSN and options, the transaction-pooler state of the lost one
    carried over. `current` is the connection to close at the end.
    """

    def __init__(self, dsn: str, kwargs: dict[str, Any], conn: Connection[Any]) -> None:
        self.dsn = dsn
        self.kwargs = kwargs
        self.current = conn

    def reopen(self, lost: Connection[Any]) -> Connection[Any]:
        """A new connection in place of `lost` (which is closed).

        Raises a plain `psycopg.OperationalError` (a transient fault: the retry policy decides
        whether to try again), its message scrubbed of any secret, when none can be opened.
        """
        pooled = unprepared(lost)
        kwargs = {**self.kwargs, "prepare_threshold": None} if pooled else self.kwargs
        try:
            conn = Connection.connect(self.dsn, **kwargs)
        except psycopg.OperationalError as exc:
            raise psycopg.OperationalError(reconnect_failure(exc, self.dsn)) from None
        mark_pooler(conn, pooler_mark(lost))
        self.current = conn
        lost.close()
        return conn


@contextmanager
def open_conn(
    dsn: str, *, pipeline: bool, pool: dict[str, Any] | None, pooler: bool | None
) -> Iterator[
    tuple[
        Connection[Any] | ConnectionPool[Any],
        Pipeline | None,
        OwnedConnection | None,
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
        probe(dsn, **kwargs)
        with ConnectionPool(
            dsn, **pool_args(kwargs, pool, check=check_if_idle, configure=stamp_new)
        ) as opened:
            mark_probed(opened)
            mark_pooler(opened, state)
            yield opened, None, None
        return
    try:
        first = Connection.connect(dsn, **kwargs)
    except psycopg.OperationalError as exc:
        raise failure(exc, dsn) from None
    mark_pooler(first, state)
    if pipeline:
        with first as conn, conn.pipeline() as pipe:
            yield conn, pipe, None
        return
    owned = OwnedConnection(dsn, kwargs, first)
    try:
        yield first, None, owned
    finally:
        owned.current.close()


# -- the shell of a saver or store -------------------------------------------------------------


# What a shell takes as `conn` (named in the error for anything else).
_ACCEPTED = (Connection, ConnectionPool)


class SyncShell(ThreadBridge, Retrying):
    """Runs operations on a connection (serialised) or a connection pool (concurrently)."""

    conn: Connection[Any] | ConnectionPool[Any]
    pipe: Pipeline | None
    lock: Lock
    # Set by `from_conn_string` on the single connection it opened: replaced when lost.
    _owned: OwnedConnection | None

    def _attach(self, conn: Any, pipe: Pipeline | None, retry: RetryPolicy | None = None) -> None:
        if not isinstance(conn, _ACCEPTED):
            accepted = " or ".join(kind.__name__ for kind in _ACCEPTED)
            raise TypeError(f"conn must be a psycopg {accepted}, not {type(conn).__name__}")
        if isinstance(conn, ConnectionPool) and pipe is not None:
            raise ValueError("a pipeline belongs to one connection: it cannot be used with a pool")
        self.conn = conn
        self.pipe = pipe
        self.lock = Lock()
        self._set_retry(retry)
        self._unprobed = isinstance(conn, ConnectionPool)
        self._bind_loop()

    def pool_stats(self) -> dict[str, int] | None:
        """The connection pool's statistics (`observe.POOL_STAT_KEYS`); None without a pool."""
        return observe.pool_stats(self.conn)

    def _attempt(self, op: Operation[T]) -> T:
        conn = self.conn
        if isinstance(conn, ConnectionPool):
            with conn.connection() as pooled:
                if unprepared(conn):  # switched (or made so): whatever the connection's age
                    pooled.prepare_threshold = None
                return run(pooled, op, self.pipe)
        with self.lock:
            conn = self._live_conn()
            # Recorded now, under the lock: once the lock is released, another thread's
            # operation may have the connection in its own transaction.
            if conn.info.transaction_status != TransactionStatus.IDLE:
                op.in_callers_transaction = True
            return run(conn, op, self.pipe)

    def _live_conn(self) -> Connection[Any]:
        """The single connection (called under the lock). The one `from_conn_string` opened,
        with no pipeline of the caller's on it, is replaced if it was lost, and checked first
        if it sat idle for a while, as a pool checks its connections."""
        conn = cast(Connection[Any], self.conn)
        owned = self._owned
        if owned is None or owned.current is not conn or self.pipe is not None:
            return conn
        if (
            not conn.broken
            and idle_for(conn) > IDLE_CHECK_AFTER
            and conn.info.transaction_status == TransactionStatus.IDLE
        ):
            with suppress(psycopg.OperationalError):
                ConnectionPool.check_connection(conn)
        if conn.broken:
            self.conn = conn = owned.reopen(conn)
        return conn

    def _run(self, op: Operation[T]) -> T:
        if self._unprobed:
            self._probe_pool()
        try:
            return self._attempt(op)
        except Exception as exc:
            return self._run_again(op, exc)

    def _probe_pool(self) -> None:
        """A pool that never opened a connection: fail now, with the reason, if it cannot."""
        self._unprobed = False
        if needs_probe(self.conn) and (why := pool_failure(self.conn)) is not None:
            raise why
        mark_probed(self.conn)

    def _run_again(self, op: Operation[T], exc: Exception) -> T:
        """Retry `op` after `exc`, as `_plan_retry` and the policy allow."""
        started, attempts = time.monotonic(), 1
        while True:
            if isinstance(exc, PoolTimeout) and (why := pool_failure(self.conn)):
                raise why from exc
            delay, weed = self._plan_retry(op, exc, attempts, started)
            if weed:
                self.conn.check()  # type: ignore[union-attr]
            sleep(delay)
            attempts += 1
            try:
                return self._attempt(op)
            except Exception as again:
                exc = again
