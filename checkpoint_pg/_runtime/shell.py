"""What every sync or async shell (savers and stores alike) does with its connection.

A shell holds a psycopg connection or pool (and optionally a pipeline of that connection) and
runs core operations on it. A single connection is used by one operation at a time (a lock per
shell); a pool hands each operation its own connection, with no lock at all.

Transient faults (see `checkpoint_pg.retry`) are retried here, by driving the failed operation
again from the step that got no answer, on a new pooled connection, or on the single connection
`from_conn_string` opened, which the shell replaces when it is lost (it is ours to replace). The
success path costs a ``try`` block: nothing is recorded unless a step fails. What is never
retried:
- on a single connection handed over by the user, a lost connection (it cannot be replaced:
  `ConnectionLostError` says so and what to do); on any single connection, a loss inside the
  caller's own transaction or pipeline, and a serialization failure or deadlock unless the
  operation was its own transaction;
- anything inside the caller's own transaction or pipeline (their transaction is gone);
- an operation whose outcome is unknown and cannot be resumed (`OperationInterruptedError`).

A transaction pooler the DSN does not reveal (any port, any host name) shows itself by an error
about psycopg's prepared statements (`driver.pooler_signature`): the pool (or connection) is
switched to unprepared statements once, with one WARNING (`switch_to_unprepared`), and the
operation runs again through the same decisions as after a serialization failure (the failed
statement never ran and its transaction was rolled back), at once. ``pooler=False`` turns this
off.

A pool that cannot connect would only time out, its reason left in log lines: so a pool is
probed with one direct connection before its first use (`from_conn_string` probes before
building it), and a pool timeout is diagnosed the same way (`checkpoint_pg._runtime.connect`).
`from_conn_string`'s single connection needs no probe: it fails when it connects.

This module holds the decisions and settings; the shells that wait on the network are
`AsyncShell` in `aio.py` and `SyncShell` in `sync.py` (generated from it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from checkpoint_pg._runtime.driver import pooler_signature
from checkpoint_pg._runtime.dsn import connection_kwargs, pooler_state, tuned_dsn
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


class Retrying:
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
        in_transaction: bool,
        replaceable: bool = False,
    ) -> Exception | None:
        """None if `op` may run again after `exc`, else the error to raise instead.

        `replaceable`: a single connection the shell opened itself (`from_conn_string`) and
        replaces when it is lost, as a pool would.
        """
        what = type(self).__name__
        if piped or not pooled:
            if fault != "lost":
                # Rolled back: ours to run again only if it was its own transaction (the
                # connection was idle when the operation began), not the caller's.
                if piped or op.in_callers_transaction:
                    return exc
            elif piped or op.in_callers_transaction or not replaceable:
                return _lost(what, exc, piped=piped, op=op)
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
    # The single connection `from_conn_string` opened (`OwnedConnection`), if that is `conn`.
    _owned: Any = None

    def _plan_retry(
        self, op: Operation[Any], exc: Exception, attempts: int, started: float
    ) -> tuple[float, bool]:
        """The delay before attempt ``attempts + 1`` of `op` after `exc`, and whether to weed
        the pool first; raises what the caller must see instead when `op` may not run again."""
        if isinstance(exc, PoolTimeout):
            raise _pool_exhausted(self.conn) from exc
        # A transaction pooler's error about a prepared statement: that statement never ran and
        # its transaction was rolled back, so the operation runs again as after a serialization
        # failure, at once and without a retry line (the switch logged its own warning).
        switched = switch_to_unprepared(self.conn, exc, type(self).__name__)
        fault: Fault | None = "rolled_back" if switched else classify(exc)
        if fault is None:
            raise exc
        pool = self.conn if isinstance(self.conn, (ConnectionPool, AsyncConnectionPool)) else None
        refusal = self._refusal(
            op,
            exc,
            fault,
            pooled=pool is not None,
            piped=self.pipe is not None,
            in_transaction=op.transactional
            or not (_pool_autocommit(pool) if pool else self.conn.autocommit),
            replaceable=self._owned is not None and self._owned.current is self.conn,
        )
        if refusal is exc:
            raise exc
        if refusal is not None:
            raise refusal from exc
        delay = self.retry.next_delay(attempts, time.monotonic() - started)
        if delay is None:
            raise self._exhausted(exc, attempts, started) from exc
        if switched:
            return 0.0, False
        log_retry(type(self).__name__, exc, attempts, self.retry, delay)
        # After a lost connection the server may have dropped all of them (restart, failover):
        # weed out the dead idle ones now rather than one failed attempt at a time.
        return delay, pool is not None and fault == "lost"

    def _exhausted(self, exc: Exception, attempts: int, started: float) -> RetriesExhaustedError:
        p = self.retry
        return RetriesExhaustedError(
            f"a {type(self).__name__} operation failed {attempts} times with transient faults "
            f"over {time.monotonic() - started:.1f}s (the last: {error_name(exc)}); gave up as "
            f"the retry policy allows {p.attempts} attempts within {p.total_budget:g}s"
        )


def _lost(what: str, exc: Exception, *, piped: bool, op: Operation[Any]) -> ConnectionLostError:
    """Why an operation on a lost single connection is not run again."""
    if piped or op.in_callers_transaction:
        where = "pipeline" if piped else "transaction"
        return ConnectionLostError(
            f"the PostgreSQL connection was lost ({error_name(exc)}) inside the caller's "
            f"{where}, which went with it: the {what} operation is not run again on its own; "
            f"leave the {where} and start again"
        )
    return ConnectionLostError(
        f"the PostgreSQL connection handed to the {what} was lost ({error_name(exc)}); a "
        f"single connection cannot be replaced: open a new one, or use {what}.from_conn_string "
        "(which replaces its lost connection) or give it a connection pool; both retry "
        "the operation"
    )


# -- a transaction pooler, found by its errors ---------------------------------------------------
# A pool (or connection) made by `from_conn_string` records what it was told: True (no prepared
# statements), False (``pooler=False``: never switch) or nothing (detect). A pool the user made
# records nothing: it is switched when a transaction pooler shows itself.
_POOLER = "_checkpoint_pg_pooler"
_switching = threading.Lock()
pooler_logger = logging.getLogger("checkpoint_pg.pooler")


def mark_pooler(target: Any, pooler: bool | None) -> None:
    """Record on a pool or connection whether it goes through a transaction pooler."""
    setattr(target, _POOLER, pooler)


def pooler_mark(target: Any) -> bool | None:
    """What `mark_pooler` recorded on `target` (None if nothing)."""
    state: bool | None = getattr(target, _POOLER, None)
    return state


def unprepared(target: Any) -> bool:
    """Whether the connections of `target` (a pool) must not prepare statements."""
    return getattr(target, _POOLER, None) is True


def switch_to_unprepared(target: Any, exc: BaseException, what: str) -> bool:
    """Whether `exc` shows that `target` (a pool or a connection) goes through a transaction
    pooler and may use it without prepared statements from now on (the failed statement may then
    run again). The first time, `target` is switched and one WARNING says how to start that way.

    Never for a target made with ``pooler=False``. A direct connection never raises these errors.
    """
    if not pooler_signature(exc):
        return False
    with _switching:
        state = getattr(target, _POOLER, None)
        if state is False:
            return False
        if state is None:
            setattr(target, _POOLER, True)
            _unprepare(target)
            pooler_logger.warning(
                "%s: %s on a prepared statement: a transaction pooler (PgBouncer, Odyssey, pgcat, "
                "Supavisor...) is in between, so %s no longer prepares statements and the "
                "operation runs again; pass pooler=True to from_conn_string (or "
                "prepare_threshold=None in the connections' options) to start that way",
                what,
                error_name(exc),
                _describe(target),
            )
    return True


def _unprepare(target: Any) -> None:
    """No prepared statements on `target`'s future connections (or on `target` itself); the
    shells set ``prepare_threshold=None`` on every connection they take from a switched pool."""
    if isinstance(target, (ConnectionPool, AsyncConnectionPool)):
        if isinstance(target.kwargs, dict):  # a new dict: the caller's own stays untouched
            target.kwargs = {**target.kwargs, "prepare_threshold": None}
    else:
        target.prepare_threshold = None


def _describe(target: Any) -> str:
    if isinstance(target, (ConnectionPool, AsyncConnectionPool)):
        return f"connection pool {target.name!r}"
    return "the connection"


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


# Set on a pool known to connect (probed by `open_conn`, or by a shell's first use).
_PROBED = "_checkpoint_pg_probed"


def needs_probe(pool: Any) -> bool:
    """A pool nobody probed and that never opened a connection (so may be unable to)."""
    if getattr(pool, _PROBED, False):
        return False
    stats = pool.get_stats()
    return not stats.get("pool_available") and not (
        stats.get("connections_num", 0) - stats.get("connections_errors", 0)
    )


def mark_probed(pool: Any) -> None:
    setattr(pool, _PROBED, True)


def _pool_autocommit(pool: ConnectionPool[Any] | AsyncConnectionPool[Any]) -> bool:
    kwargs = pool.kwargs  # a dict, or (psycopg_pool 3.3) a function returning one: unknown
    return isinstance(kwargs, dict) and bool(kwargs.get("autocommit"))


# Checking a connection on every checkout costs a round trip per operation (benchmarks/
# RESULTS.md, "Design measurements"). The pools check only a connection that nobody took for
# `IDLE_CHECK_AFTER` seconds — the one a server restart, a failover or an idle-connection reaper
# would have killed unseen — and a connection checked out more recently is covered by the retry of
# the operation that finds it dead (then `pool.check()` weeds out its dead siblings at once). Dead
# peers on a silent network are found by TCP keepalives and tcp_user_timeout (see dsn.tuned_dsn);
# a connection that breaks is discarded by the pool when returned.
IDLE_CHECK_AFTER = 5.0
TAKEN_AT = "_checkpoint_pg_taken_at"


def idle_for(conn: Any) -> float:
    """Seconds since `conn` was last taken from the pool (or opened), stamping now."""
    now = time.monotonic()
    taken: float = getattr(conn, TAKEN_AT, now)
    setattr(conn, TAKEN_AT, now)
    return now - taken


def connect_args(dsn: str, pooler: bool | None) -> tuple[str, dict[str, Any], bool | None]:
    """The DSN with this package's network defaults, the connection options for it, and what
    its pool or connection starts as (`checkpoint_pg._runtime.dsn.pooler_state`)."""
    dsn = tuned_dsn(dsn)
    state = pooler_state(dsn, pooler)
    return dsn, connection_kwargs(pooler=bool(state)), state


def pool_args(kwargs: dict[str, Any], options: Mapping[str, Any], **ours: Any) -> dict[str, Any]:
    """What the sync and async pools of `from_conn_string` share, given the caller's `options`:
    ``min_size`` (default 1), ``max_size`` (default 10, or ``min_size`` if larger), ``kwargs``
    laid over this package's connection options, and any other pool argument as given (over
    `ours`: the shells' ``check`` and ``configure``)."""
    options = dict(options)
    min_size = options.pop("min_size", 1)
    return {
        "min_size": min_size,
        "max_size": options.pop("max_size", None) or max(DEFAULT_POOL_SIZE, min_size),
        "kwargs": {**kwargs, **(options.pop("kwargs", None) or {})},
        "name": "checkpoint-pg",
        **ours,
        **options,
        "open": False,
    }


DEFAULT_POOL_SIZE = 10


def saver_pool(pool_size: int | None, pipeline: bool) -> dict[str, Any] | None:
    """A saver's `from_conn_string` pool options: None (one connection, the default, as the
    official saver has it) unless `pool_size` asks for a pool of at most that many connections."""
    if pool_size is None:
        return None
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise ValueError(f"pool_size must be None or a positive int, not {pool_size!r}")
    if pipeline:
        raise ValueError(
            "pipeline=True asks for one connection in pipeline mode and pool_size for a pool: "
            "choose one"
        )
    return {"max_size": pool_size}
