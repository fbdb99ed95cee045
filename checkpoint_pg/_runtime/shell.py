"""What every sync or async shell (savers and stores alike) does with its connection.

A shell holds a psycopg connection or pool (and optionally a pipeline of that connection) and
runs core operations on it. A single connection is used by one operation at a time (a lock per
shell); a pool hands each operation its own connection, with no lock at all.

Transient faults (see `checkpoint_pg.retry`) are retried here, by driving the failed operation
again from the step that got no answer, on a new pooled connection. The success path costs a
``try`` block: nothing is recorded unless a step fails. What is never retried:
- on a single connection handed over by the user, a lost connection (it cannot be replaced:
  `ConnectionLostError` says so and what to do); a serialization failure or deadlock is
  retried there only when the operation was its own transaction;
- anything inside the caller's own transaction or pipeline (their transaction is gone);
- an operation whose outcome is unknown and cannot be resumed (`OperationInterruptedError`).

A pool that cannot connect would only time out, its reason left in log lines: so a pool is
probed with one direct connection before its first use (`from_conn_string` probes before
building it), and a pool timeout is diagnosed the same way (`checkpoint_pg._runtime.connect`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncPipeline, Connection, Pipeline
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from checkpoint_pg._runtime import connect as _connect
from checkpoint_pg._runtime import driver as _driver
from checkpoint_pg._runtime import observe as _observe
from checkpoint_pg._runtime.dsn import connection_kwargs, resolve_pooler, tuned_dsn
from checkpoint_pg._runtime.errors import (
    ConnectionLostError,
    OperationInterruptedError,
    PoolExhaustedError,
    RetriesExhaustedError,
)
from checkpoint_pg._runtime.protocol import Operation, resumable
from checkpoint_pg._runtime.retry import (
    DEFAULT_POLICY,
    Fault,
    RetryPolicy,
    classify,
    error_name,
    log_retry,
)

T = TypeVar("T")


class _Retrying:
    """The retry decisions both shells share (the loops differ only by sleeping and awaiting)."""

    retry: RetryPolicy

    def _set_retry(self, retry: RetryPolicy | None) -> None:
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, not {type(retry).__name__}")
        self.retry = DEFAULT_POLICY if retry is None else retry

    def _refusal(
        self,
        op: Operation[Any],
        exc: Exception,
        fault: Fault,
        *,
        pooled: bool,
        piped: bool,
        single: Any,
        in_transaction: bool,
    ) -> Exception | None:
        """None if `op` may run again after `exc`, else the error to raise instead."""
        what = type(self).__name__
        if piped or not pooled:
            where = "inside the caller's pipeline" if piped else "handed to the " + what
            if fault == "lost":
                return ConnectionLostError(
                    f"the PostgreSQL connection {where} was lost ({error_name(exc)}); a single "
                    "connection cannot be replaced: open a new one, or give the "
                    f"{what} a connection pool (or use {what}.from_conn_string), which "
                    "replaces lost connections and retries the operation"
                )
            # Rolled back: ours to run again only if it was its own transaction (after the
            # fault the connection is idle then; inside the caller's transaction it is not).
            if piped or single.info.transaction_status != TransactionStatus.IDLE:
                return exc
        if fault == "lost" and not op.idempotent:
            return OperationInterruptedError(
                f"a {what} operation was interrupted by {error_name(exc)} and is not "
                "idempotent: it may or may not have been applied; check before running it again"
            )
        if (reason := resumable(op, in_transaction)) is not None:
            if fault != "lost":
                return exc
            return OperationInterruptedError(
                f"a {what} operation was interrupted by {error_name(exc)}: {reason}, so it may "
                "or may not have been applied; it is idempotent: call it again"
            )
        if not self.retry.enabled:
            return exc
        return None

    conn: Any
    pipe: Any

    def _plan_retry(
        self, op: Operation[Any], exc: Exception, attempts: int, started: float
    ) -> tuple[float, bool]:
        """The delay before attempt ``attempts + 1`` of `op` after `exc`, and whether to weed
        the pool first; raises what the caller must see instead when `op` may not run again."""
        if isinstance(exc, PoolTimeout):
            raise _pool_exhausted(self.conn) from exc
        if (fault := classify(exc)) is None:
            raise exc
        pool = self.conn if isinstance(self.conn, (ConnectionPool, AsyncConnectionPool)) else None
        refusal = self._refusal(
            op,
            exc,
            fault,
            pooled=pool is not None,
            piped=self.pipe is not None,
            single=self.conn,
            in_transaction=op.transactional
            or not (_pool_autocommit(pool) if pool else self.conn.autocommit),
        )
        if refusal is exc:
            raise exc
        if refusal is not None:
            raise refusal from exc
        delay = self.retry.next_delay(attempts, time.monotonic() - started)
        if delay is None:
            raise self._exhausted(exc, attempts, started) from exc
        log_retry(type(self).__name__, exc, attempts, self.retry, delay)
        # After a lost connection the server may have dropped all of them (restart, failover):
        # weed out the dead idle ones now rather than one failed attempt at a time.
        return delay, pool is not None and fault == "lost"

    def _exhausted(self, exc: Exception, attempts: int, started: float) -> RetriesExhaustedError:
        p = self.retry
        return RetriesExhaustedError(
            f"a {type(self).__name__} operation failed {attempts} times with transient faults "
            f"over {time.monotonic() - started:.1f}s (the last: {error_name(exc)}); gave up as "
            f"the retry policy allows {p.max_attempts} attempts within {p.total_budget:g}s"
        )


def _pool_exhausted(pool: ConnectionPool[Any] | AsyncConnectionPool[Any]) -> PoolExhaustedError:
    stats = pool.get_stats()
    if stats.get("pool_size", 0) >= pool.max_size and not stats.get("pool_available", 0):
        why = f"all {pool.max_size} connections (max_size) were in use"
        fix = "raise max_size, or hold connections for shorter"
    else:
        why = "the pool could not open a new connection"
        fix = "check that the server is reachable (the pool keeps trying in the background)"
    return PoolExhaustedError(
        f"no connection from pool {pool.name!r} within its timeout of {pool.timeout:g}s: "
        f"{why}; {fix}"
    )


# Set on a pool known to connect (probed by `connect_sync`, or by a shell's first use).
_PROBED = "_checkpoint_pg_probed"


def _needs_probe(pool: Any) -> bool:
    """A pool nobody probed and that never opened a connection (so may be unable to)."""
    if getattr(pool, _PROBED, False):
        return False
    stats = pool.get_stats()
    return not stats.get("pool_available") and not (
        stats.get("connections_num", 0) - stats.get("connections_errors", 0)
    )


def _mark_probed(pool: Any) -> None:
    setattr(pool, _PROBED, True)


def _pool_autocommit(pool: ConnectionPool[Any] | AsyncConnectionPool[Any]) -> bool:
    kwargs = pool.kwargs  # a dict, or (psycopg_pool 3.3) a function returning one: unknown
    return isinstance(kwargs, dict) and bool(kwargs.get("autocommit"))


class SyncShell(_Retrying):
    """Runs operations on a `Connection` (serialised) or a `ConnectionPool` (concurrently)."""

    conn: Connection[Any] | ConnectionPool[Any]
    pipe: Pipeline | None
    lock: threading.Lock

    def _attach(self, conn: Any, pipe: Pipeline | None, retry: RetryPolicy | None = None) -> None:
        if not isinstance(conn, (Connection, ConnectionPool)):
            raise TypeError(
                f"conn must be a psycopg Connection or ConnectionPool, not {type(conn).__name__}"
            )
        if isinstance(conn, ConnectionPool) and pipe is not None:
            raise ValueError("a pipeline belongs to one Connection: it cannot be used with a pool")
        self.conn = conn
        self.pipe = pipe
        self.lock = threading.Lock()
        self._set_retry(retry)
        self._unprobed = isinstance(conn, ConnectionPool)

    def pool_stats(self) -> dict[str, int] | None:
        """The connection pool's statistics (`_observe.POOL_STAT_KEYS`); None without a pool."""
        return _observe.pool_stats(self.conn)

    def _attempt(self, op: Operation[T]) -> T:
        conn = self.conn
        if isinstance(conn, ConnectionPool):
            with conn.connection() as pooled:
                return _driver.run(pooled, op, self.pipe)
        with self.lock:
            return _driver.run(conn, op, self.pipe)

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
        if _needs_probe(self.conn) and (why := _connect.pool_failure(self.conn)) is not None:
            raise why
        _mark_probed(self.conn)

    def _run_again(self, op: Operation[T], exc: Exception) -> T:
        """Retry `op` after `exc`, as `_plan_retry` and the policy allow."""
        started, attempts = time.monotonic(), 1
        while True:
            if isinstance(exc, PoolTimeout) and (why := _connect.pool_failure(self.conn)):
                raise why from exc
            delay, weed = self._plan_retry(op, exc, attempts, started)
            if weed:
                self.conn.check()  # type: ignore[union-attr]
            time.sleep(delay)
            attempts += 1
            try:
                return self._attempt(op)
            except Exception as again:
                exc = again


class AsyncShell(_Retrying):
    """Runs operations on an `AsyncConnection` (serialised) or an `AsyncConnectionPool`."""

    conn: AsyncConnection[Any] | AsyncConnectionPool[Any]
    pipe: AsyncPipeline | None
    lock: asyncio.Lock
    loop: asyncio.AbstractEventLoop | None
    # The async calls a caller should make instead of a blocking one, for the error message.
    _async_hint: ClassVar[str] = "await the a-prefixed methods"

    def _attach(
        self, conn: Any, pipe: AsyncPipeline | None, retry: RetryPolicy | None = None
    ) -> None:
        if not isinstance(conn, (AsyncConnection, AsyncConnectionPool)):
            raise TypeError(
                "conn must be a psycopg AsyncConnection or AsyncConnectionPool, "
                f"not {type(conn).__name__}"
            )
        if isinstance(conn, AsyncConnectionPool) and pipe is not None:
            raise ValueError("a pipeline belongs to one connection: it cannot be used with a pool")
        self.conn = conn
        self.pipe = pipe
        self.lock = asyncio.Lock()
        self._set_retry(retry)
        self._unprobed = isinstance(conn, AsyncConnectionPool)
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def pool_stats(self) -> dict[str, int] | None:
        """The connection pool's statistics (`_observe.POOL_STAT_KEYS`); None without a pool."""
        return _observe.pool_stats(self.conn)

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the shell's event loop from another thread, and wait for it.

        The blocking twins of the async methods (see `twins.py`) come here. They serve code
        on other threads (LangGraph makes such calls); on the loop's own thread they would
        deadlock, and without a running loop nothing would run the coroutine: both raise.
        """
        loop = self.loop
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if loop is None or on_loop or not loop.is_running():
            coro.close()
            raise asyncio.InvalidStateError(
                f"Synchronous calls to {type(self).__name__} are only allowed from a different "
                "thread, while the event loop it was created on runs. From that loop, use the "
                f"async interface: {self._async_hint}."
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def _attempt(self, op: Operation[T]) -> T:
        if isinstance(self.conn, AsyncConnectionPool):
            async with self.conn.connection() as conn:
                return await _driver.arun(conn, op, self.pipe)
        async with self.lock:
            return await _driver.arun(self.conn, op, self.pipe)

    async def _run(self, op: Operation[T]) -> T:
        if self._unprobed:
            await self._probe_pool()
        try:
            return await self._attempt(op)
        except Exception as exc:
            return await self._run_again(op, exc)

    async def _probe_pool(self) -> None:
        """Async twin of `SyncShell._probe_pool`."""
        self._unprobed = False
        if _needs_probe(self.conn) and (why := await _connect.apool_failure(self.conn)):
            raise why
        _mark_probed(self.conn)

    async def _run_again(self, op: Operation[T], exc: Exception) -> T:
        """Async twin of `SyncShell._run_again`."""
        started, attempts = time.monotonic(), 1
        while True:
            if isinstance(exc, PoolTimeout) and (why := await _connect.apool_failure(self.conn)):
                raise why from exc
            delay, weed = self._plan_retry(op, exc, attempts, started)
            if weed:
                await self.conn.check()  # type: ignore[union-attr]
            await asyncio.sleep(delay)
            attempts += 1
            try:
                return await self._attempt(op)
            except Exception as again:
                exc = again


# Checking a connection on every checkout cost a round trip per operation (1.85x slower across
# a 1 ms network). The pools check only a connection that nobody took for `IDLE_CHECK_AFTER`
# seconds — the one a server restart, a failover or an idle-connection reaper would have
# killed unseen — and a connection checked out more recently is covered by the retry of the
# operation that finds it dead (then `pool.check()` weeds out its dead siblings at once).
# Dead peers on a silent network are found by TCP keepalives and tcp_user_timeout (see
# connection.tuned_dsn); a connection that breaks is discarded by the pool when returned.
IDLE_CHECK_AFTER = 5.0
_TAKEN_AT = "_checkpoint_pg_taken_at"


def _idle_for(conn: Any) -> float:
    """Seconds since `conn` was last taken from the pool (or opened), stamping now."""
    now = time.monotonic()
    taken: float = getattr(conn, _TAKEN_AT, now)
    setattr(conn, _TAKEN_AT, now)
    return now - taken


def stamp_new(conn: Connection[Any]) -> None:
    """`ConnectionPool(configure=...)`: a new connection counts as idle from its opening."""
    setattr(conn, _TAKEN_AT, time.monotonic())


async def astamp_new(conn: AsyncConnection[Any]) -> None:
    """`AsyncConnectionPool(configure=...)`: async twin of `stamp_new`."""
    setattr(conn, _TAKEN_AT, time.monotonic())


def check_if_idle(conn: Connection[Any]) -> None:
    """`ConnectionPool(check=...)`: ping a connection only if it sat idle for a while."""
    if _idle_for(conn) > IDLE_CHECK_AFTER:
        ConnectionPool.check_connection(conn)


async def acheck_if_idle(conn: AsyncConnection[Any]) -> None:
    """`AsyncConnectionPool(check=...)`: async twin of `check_if_idle`."""
    if _idle_for(conn) > IDLE_CHECK_AFTER:
        await AsyncConnectionPool.check_connection(conn)


def _connect_args(dsn: str, pooler: bool | None) -> tuple[str, dict[str, Any]]:
    """The DSN with this package's network defaults, and the connection options for it."""
    dsn = tuned_dsn(dsn)
    return dsn, connection_kwargs(pooler=resolve_pooler(dsn, pooler))


def _pool_args(kwargs: dict[str, Any], pool_size: int) -> dict[str, Any]:
    """What the sync and async pools of `from_conn_string` share."""
    return {
        "min_size": 1,
        "max_size": pool_size,
        "kwargs": kwargs,
        "name": "checkpoint-pg",
        "open": False,
    }


@contextmanager
def connect_sync(
    dsn: str, *, pipeline: bool, pool_size: int, pooler: bool | None
) -> Iterator[tuple[Connection[Any] | ConnectionPool[Any], Pipeline | None]]:
    """A pool (or one pipelined connection) configured the way this package wants it."""
    dsn, kwargs = _connect_args(dsn, pooler)
    if pipeline:
        try:
            first = Connection.connect(dsn, **kwargs)
        except psycopg.OperationalError as exc:
            raise _connect.failure(exc, dsn) from None
        with first as conn, conn.pipeline() as pipe:
            yield conn, pipe
        return
    _connect.probe(dsn, **kwargs)  # a wrong DSN fails now, saying why; not in 30 s
    with ConnectionPool(
        dsn, **_pool_args(kwargs, pool_size), check=check_if_idle, configure=stamp_new
    ) as pool:
        _mark_probed(pool)
        yield pool, None


@asynccontextmanager
async def connect_async(
    dsn: str, *, pipeline: bool, pool_size: int, pooler: bool | None
) -> AsyncIterator[tuple[AsyncConnection[Any] | AsyncConnectionPool[Any], AsyncPipeline | None]]:
    """Async twin of `connect_sync`."""
    dsn, kwargs = _connect_args(dsn, pooler)
    if pipeline:
        try:
            first = await AsyncConnection.connect(dsn, **kwargs)
        except psycopg.OperationalError as exc:
            raise _connect.failure(exc, dsn) from None
        async with first as conn, conn.pipeline() as pipe:
            yield conn, pipe
        return
    await _connect.aprobe(dsn, **kwargs)
    async with AsyncConnectionPool(
        dsn, **_pool_args(kwargs, pool_size), check=acheck_if_idle, configure=astamp_new
    ) as pool:
        _mark_probed(pool)
        yield pool, None
