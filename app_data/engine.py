"""The async engine of app_data: how it connects, pools and checks its connections.

SQLAlchemy 2.0 over psycopg 3, the savers' driver. The connection comes from a creator
function, never from the engine's URL, so no secret is ever part of the engine (its repr, its
log lines). Pooler mode (PgBouncer / Supavisor in transaction mode) gives a ``NullPool`` (the
pooler pools) and no prepared statements (psycopg ``prepare_threshold=None``: a statement
prepared on one server connection would be missing on the next); a pooler the URL does not reveal
is recognised by its first error and the engine switched (`switch_to_unprepared`). Otherwise a
queue pool sized by
the settings, with recycling, that pings a connection on checkout only when it sat idle in the
pool for more than ``pool_ping_after`` seconds, as the savers' pools do
(`checkpoint_pg._runtime.shell.check_if_idle`): the one a server restart, a failover or an
idle-connection reaper would have killed unseen. A connection checked in more recently is
covered by the unit of work's retry when it turns out dead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from sqlalchemy import URL, event
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from app_data.agent_tables import reject_writes
from app_data.settings import AppDataSettings
from app_data.translate import describe
from checkpoint_pg._runtime import connect as _connect
from checkpoint_pg._runtime.driver import pooler_signature
from checkpoint_pg._runtime.retry import error_name

__all__ = ["AppSession", "create_engine", "ping_when_idle", "switch_to_unprepared"]

logger = logging.getLogger("app_data.engine")

# Where a pooled connection keeps the time it was last returned to the pool (or opened).
_IDLE_SINCE = "app_data_idle_since"


class AppSession(Session):
    """The ORM session class of app_data: refuses writes to the LangGraph mappings."""


event.listen(AppSession, "do_orm_execute", reject_writes)


class _Prepared:
    """Whether the engine's connections prepare statements: until a transaction pooler shows
    itself by its errors (`switch_to_unprepared`), when the URL did not reveal it."""

    def __init__(self, *, pooler: bool, detect: bool) -> None:
        self.threshold: int | None = None if pooler else 5
        self.detect = detect
        self.lock = threading.Lock()

    def unprepare(self, dbapi_connection: DBAPIConnection, *_: object) -> None:
        """The pool's checkout hook once switched: whatever the connection's age, no prepares."""
        driver = getattr(dbapi_connection, "driver_connection", None)
        if self.threshold is None and isinstance(driver, psycopg.AsyncConnection):
            driver.prepare_threshold = None


_PREPARED = "_app_data_prepared"


def switch_to_unprepared(engine: AsyncEngine, exc: BaseException) -> bool:
    """Whether `exc` shows a transaction pooler in front of `engine`'s database that `engine` may
    now use without prepared statements (the failed unit of work may then run again: its
    statement never ran and its transaction was rolled back). The first time, the engine stops
    preparing statements and one WARNING names the setting that starts that way.

    Never when the URL or the caller said ``pgbouncer=false`` / ``pooler=False``.
    """
    prepared: _Prepared | None = getattr(engine.sync_engine, _PREPARED, None)
    if prepared is None or not pooler_signature(exc):
        return False
    with prepared.lock:
        if prepared.threshold is None:
            return True
        if not prepared.detect:
            return False
        prepared.threshold = None
        event.listen(engine.sync_engine.pool, "checkout", prepared.unprepare)
    logger.warning(
        "%s on a prepared statement: a transaction pooler (PgBouncer, Odyssey, pgcat, "
        "Supavisor...) is in between, so the app_data engine no longer prepares statements and "
        "the unit of work runs again; add ?pgbouncer=true to the URL (or pass pooler=True) to "
        "start that way",
        error_name(exc),
    )
    return True


def create_engine(settings: AppDataSettings) -> AsyncEngine:
    """Create the async engine `settings` describe (not yet connected).

    Pooler mode gives a ``NullPool`` and connections without prepared statements; otherwise a
    queue pool sized by the settings, with recycling and a ping of connections idle for more
    than ``pool_ping_after`` seconds (when ``pool_pre_ping``).
    """
    target = settings.target()
    prepared = _Prepared(pooler=target.pooler, detect=target.detect)
    kwargs: dict[str, Any] = {
        "async_creator": _creator(target.conninfo, prepared),
        "echo": settings.echo,
        # Parameters are file contents and thoughts: keep them out of logs and messages.
        "hide_parameters": True,
    }
    if target.pooler:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_recycle=settings.pool_recycle,
        )
    # The URL only selects the dialect: the connection comes from the creator.
    engine = _create_async_engine(URL.create("postgresql+psycopg"), **kwargs)
    setattr(engine.sync_engine, _PREPARED, prepared)
    if settings.pool_pre_ping and not target.pooler:
        ping_when_idle(engine, settings.pool_ping_after)
    return engine


def _creator(
    conninfo: str, prepared: _Prepared
) -> Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]:
    """The engine's ``async_creator``: opens one psycopg connection to `conninfo`.

    Until the server was reached once, a failure is the address's (`ConnectionFailedError`,
    typed, with libpq's reason, never retried as a lost connection); afterwards, a transient
    fault.
    """
    reached = False

    async def connect() -> psycopg.AsyncConnection[Any]:
        nonlocal reached
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo, prepare_threshold=prepared.threshold
            )
        except psycopg.OperationalError as exc:
            if reached:
                raise
            raise _connect.failure(exc, conninfo) from None
        reached = True
        return conn

    return connect


def ping_when_idle(engine: AsyncEngine, idle_after: float) -> None:
    """Ping a pooled connection on checkout when it sat idle for more than `idle_after` seconds.

    A connection that fails the ping is discarded and the pool hands out a new one (SQLAlchemy
    retries a checkout that raises `DisconnectionError`), so the caller never sees it.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def stamp(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def check(
        dbapi_connection: DBAPIConnection,
        record: ConnectionPoolEntry,
        proxy: PoolProxiedConnection,
    ) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since > idle_after:
            _ping(dialect, dbapi_connection)

    event.listen(pool, "connect", stamp)
    event.listen(pool, "checkin", stamp)
    event.listen(pool, "checkout", check)


def _ping(dialect: Dialect, dbapi_connection: DBAPIConnection) -> None:
    """One round trip on `dbapi_connection`; a failure means the connection is dead."""
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as exc:
        raise DisconnectionError(
            f"an idle pooled connection failed its ping: {describe(exc)}"
        ) from exc
