"""The `Database` of app_data: units of work, start-up, health and shutdown.

One `Database` per process owns the async engine (`app_data.engine`). Every unit of work is one
transaction opened here by `Database.transaction`: repositories receive the session and never
commit; the block commits when it ends and rolls back when it raises. Database errors leave the
block as typed errors from `app_data.errors` (`app_data.translate`).

The rest lives by concern, and every name stays importable from here as before:

- `app_data.settings`: `AppDataSettings`, `load_settings`, `get_settings`;
- `app_data.url`: `ConnectionTarget`, `parse_database_url` (validation, Prisma-era
  parameters, pooler detection, masking);
- `app_data.engine`: `AppSession`, `create_engine` (pool, idle-connection ping);
- `app_data.startup`: the start-up retry under the shared `RetryPolicy`;
- `app_data.translate`: database errors to typed errors, and which to retry;
- `app_data.health`: `HealthReport`, `PoolStatus`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app_data.engine import AppSession, create_engine, switch_to_unprepared
from app_data.errors import (
    AppDataError,
    CommitOutcomeUnknownError,
    DatabaseClosedError,
    DatabaseUnavailableError,
)
from app_data.health import HealthReport, PoolStatus, pool_status
from app_data.settings import AppDataSettings, get_settings, load_settings
from app_data.startup import wait_until_reachable
from app_data.translate import describe, retryable, translate_error
from app_data.url import ConnectionTarget, parse_database_url
from checkpoint_pg._runtime.retry import (
    DEFAULT_POLICY,
    RetryPolicy,
    classify,
    error_name,
    log_retry,
)

__all__ = [
    "AppDataSettings",
    "AppSession",
    "ConnectionTarget",
    "Database",
    "HealthReport",
    "PoolStatus",
    "create_engine",
    "get_settings",
    "load_settings",
    "parse_database_url",
    "translate_error",
]

logger = logging.getLogger("app_data.session")
R = TypeVar("R")
# The name this module gave `describe` before the split (app_data.migrations used it).
_describe = describe


class Database:
    """The engine, its units of work, start-up, health and shutdown.

    Use as ``async with Database() as db:`` (connects with retry, closes gracefully) or call
    `connect` and `close` yourself.

    Args:
        settings: the settings, a URL (other settings then come from the environment and
            `overrides`), or None for `get_settings()`.
        retry: keyword-only; how a unit of work that meets a transient fault before COMMIT is
            run again (the product-wide `checkpoint_pg.retry.RetryPolicy`; None: the default,
            `RetryPolicy.never()`: never).
        overrides: settings to override when `settings` is a URL or None.
    """

    def __init__(
        self,
        settings: AppDataSettings | str | None = None,
        *,
        retry: RetryPolicy | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(settings, str):
            settings = load_settings(database_url=settings, **overrides)
        elif settings is None:
            settings = load_settings(**overrides) if overrides else get_settings()
        elif overrides:
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        self.target = settings.target()
        self.engine = create_engine(settings)
        self._sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=AppSession
        )
        self.retry = DEFAULT_POLICY if retry is None else retry
        self._closed = False
        self._running: set[AsyncSession] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Database({self.target.masked!r}, pooler={self.target.pooler}, {state})"

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- start-up -------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Check the database answers, retrying transient failures with the shared policy.

        The policy is ``settings.connect_policy()``: the product-wide `RetryPolicy`'s capped
        exponential backoff with jitter, for at most ``connect_attempts`` attempts and
        ``connect_deadline`` seconds. Failures that retrying cannot fix (unknown host or
        database, authentication, SSL) fail at once.

        Raises:
            DatabaseConnectionFailedError: no connection could be opened (message masked).
            DatabaseUnavailableError: the database did not answer (message masked).
            DatabaseClosedError: the database was closed.
        """
        self._check_open()
        await wait_until_reachable(self._ping, self.target, self.settings.connect_policy())

    async def _ping(self) -> int:
        async with self.engine.connect() as conn:
            result = await conn.execute(text("SELECT current_setting('server_version_num')::int"))
            return int(result.scalar_one())

    # -- units of work --------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: a session in one transaction, committed at the end of the block.

        The block rolls back if it raises. Database errors leave it as `app_data.errors` types
        (`UnknownProjectError`, `ConflictError`, `DatabaseUnavailableError`, ...); so does an
        exhausted pool (no connection free within ``pool_timeout``).

        Raises:
            DatabaseClosedError: `close` was called.
        """
        self._check_open()
        async with self._sessions() as session:
            self._running.add(session)
            self._idle.clear()
            committing = False
            try:
                async with session.begin():
                    yield session
                    await session.flush()
                    # From here on COMMIT is on its way: if the connection is lost now, the
                    # outcome is unknown and the unit of work must not run again by itself.
                    committing = True
            except DBAPIError as exc:
                if not committing and switch_to_unprepared(self.engine, exc):
                    raise translate_error(exc) from exc  # `run_unit` runs it again at once
                if committing and classify(exc) == "lost":
                    raise CommitOutcomeUnknownError(
                        f"the database connection was lost while committing ({error_name(exc)}):"
                        " the unit of work may or may not have been applied; check before "
                        "repeating it"
                    ) from exc
                raise translate_error(exc) from exc
            except PoolTimeoutError as exc:
                raise DatabaseUnavailableError(
                    f"no database connection became free within {self.settings.pool_timeout:g}s "
                    f"(pool_size={self.settings.pool_size}, "
                    f"max_overflow={self.settings.max_overflow})"
                ) from exc
            finally:
                self._running.discard(session)
                if not self._running:
                    self._idle.set()

    async def run_unit(self, unit: Callable[[], Awaitable[R]], what: str) -> R:
        """Run `unit` (one unit of work: it opens one `transaction`), again after a fault the
        shared `RetryPolicy` deems transient, when it happened before COMMIT was sent (the
        transaction was rolled back, so running it again cannot apply it twice).

        A fault while committing is `CommitOutcomeUnknownError` and never retried. After the
        last allowed attempt the last error is raised, its message saying how many were made.
        """
        try:
            return await unit()
        except AppDataError as exc:
            if not self._rerunnable(exc):
                raise
            first = exc
        policy, started, attempts, last = self.retry, time.monotonic(), 1, first
        while True:
            delay = policy.next_delay(attempts, time.monotonic() - started)
            if delay is None or self._closed:
                if attempts == 1:
                    raise last
                raise type(last)(
                    f"{last} (gave up after {attempts} attempts in "
                    f"{time.monotonic() - started:.1f}s)"
                ) from last.__cause__
            if self._pooler_switched(last):  # warned once already; no backoff, no retry line
                delay = 0.0
            else:
                log_retry(what, cast(BaseException, last.__cause__), attempts, policy, delay)
            await asyncio.sleep(delay)
            attempts += 1
            try:
                return await unit()
            except AppDataError as exc:
                if not self._rerunnable(exc):
                    raise
                last = exc

    def _pooler_switched(self, exc: AppDataError) -> bool:
        """`exc` was a transaction pooler's error and the engine now runs without prepares."""
        cause = exc.__cause__
        return cause is not None and switch_to_unprepared(self.engine, cause)

    def _rerunnable(self, exc: AppDataError) -> bool:
        return retryable(exc) or self._pooler_switched(exc)

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError(f"{self!r} is closed; no new unit of work can start")

    # -- health ---------------------------------------------------------------------------------

    def pool_status(self) -> PoolStatus:
        """Report the connection pool's occupancy (never fails, whatever the pool class)."""
        return pool_status(self.engine.pool)

    async def health_check(self, timeout: float | None = None) -> HealthReport:
        """Run a round trip within `timeout` seconds and report latency and pool status.

        It reports failures instead of raising them, so a health endpoint can return the report
        as it is (the error text is masked).
        """
        timeout = self.settings.health_check_timeout if timeout is None else timeout
        started = time.perf_counter()
        version: int | None = None
        error: str | None = None
        if self._closed:
            error = "the database is closed"
        else:
            try:
                version = await asyncio.wait_for(self._ping(), timeout)
            except asyncio.TimeoutError:
                error = f"no answer within {timeout:g}s"
            except (SQLAlchemyError, psycopg.Error, OSError) as exc:
                error = describe(exc)
        latency_ms = (time.perf_counter() - started) * 1000.0
        if error is not None:
            logger.warning("health check of %s failed: %s", self.target.masked, error)
        return HealthReport(
            healthy=error is None,
            latency_ms=latency_ms,
            pool=self.pool_status(),
            server_version=version,
            error=error,
        )

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self, timeout: float | None = None) -> None:
        """Refuse new units of work, let running ones finish (up to `timeout`), close the pool.

        Idempotent. Units of work still running after `timeout` seconds lose their connection
        (it is closed: their transaction rolls back and their next statement fails with
        `DatabaseUnavailableError`), so no connection outlives the `Database`.
        """
        if self._closed:
            return
        self._closed = True
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        if self._running:
            logger.info(
                "closing %s: waiting for %d unit(s) of work", self.target.masked, len(self._running)
            )
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except asyncio.TimeoutError:
                logger.warning(
                    "closing %s with %d unit(s) of work still running after %gs: "
                    "closing their connections",
                    self.target.masked,
                    len(self._running),
                    timeout,
                )
                for session in list(self._running):
                    try:
                        await session.invalidate()
                    except (SQLAlchemyError, psycopg.Error, OSError) as exc:
                        logger.debug("closing a running unit of work failed: %s", describe(exc))
        await self.engine.dispose()
        logger.info("closed the connection pool of %s", self.target.masked)
