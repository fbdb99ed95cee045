"""Settings, engine, units of work, start-up retry, health and shutdown for app_data.

One `Database` per process owns the async engine (SQLAlchemy 2.0 over psycopg 3, the savers'
driver). Every unit of work is one transaction opened here by `Database.transaction`:
repositories receive the session and never commit; the block commits when it ends and rolls
back when it raises. Database errors leave the block as typed errors from `app_data.errors`.

Connection strings: ``postgresql+psycopg://`` and libpq ``postgresql://`` URLs and libpq
key=value strings are accepted and validated up front, with clear messages. Three URL
parameters that libpq does not know are understood, because the platform's Prisma-era URLs
carry them: ``pgbouncer=true`` (pooler mode), ``ssl=true|false|<sslmode>`` (alias of
``sslmode``) and ``schema=NAME`` (becomes the ``search_path``). SSL is libpq's: ``sslmode``,
``sslrootcert``... pass straight through, so cloud providers that require TLS work with
``?sslmode=require`` (or ``verify-full``). Passwords never appear in a log line, an error
message or a repr: everything that shows a connection string shows it masked
(`checkpoint_pg._runtime.dsn.mask_dsn`, plus libpq's other secret parameters).

Pooler mode (PgBouncer / Supavisor in transaction mode): a ``NullPool`` (the pooler pools) and
no prepared statements (psycopg ``prepare_threshold=None``: a statement prepared on one server
connection would be missing on the next). It is on when the settings say so, when the URL says
``pgbouncer=true``, or when the port is a known pooler port (6432, 6543; see
`checkpoint_pg._runtime.dsn.pooled_ports`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import make_conninfo
from pydantic import AliasChoices, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import URL, event, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool, QueuePool
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from app_data.agent_tables import reject_writes
from app_data.errors import (
    AppDataError,
    CommitOutcomeUnknownError,
    ConfigurationError,
    ConflictError,
    DatabaseClosedError,
    DatabaseConnectionFailedError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidDatabaseURLError,
    UnknownProjectError,
    UnknownReferenceError,
    UnknownUserError,
)
from checkpoint_pg._runtime import connect as _connect
from checkpoint_pg._runtime.dsn import InvalidDSNError, is_pooled, mask_dsn, tuned_dsn, validate_dsn
from checkpoint_pg._runtime.errors import ConnectionFailedError
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
]

log = logging.getLogger("app_data.session")
R = TypeVar("R")

# -- settings -----------------------------------------------------------------------------------


class AppDataSettings(BaseSettings):
    """Everything app_data reads from the environment (``APP_DATA_*``), typed and frozen.

    The URL comes from ``$APP_DATA_DATABASE_URL``, else ``$CHECKPOINT_PG_DSN`` (the DSN the
    savers and the CLI use, so one variable configures the whole product).
    """

    model_config = SettingsConfigDict(
        env_prefix="APP_DATA_",
        frozen=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    database_url: SecretStr = Field(
        validation_alias=AliasChoices("APP_DATA_DATABASE_URL", "CHECKPOINT_PG_DSN")
    )
    pooler: bool | None = Field(
        default=None, description="None: detect from the URL (pgbouncer=true or pooler port)"
    )
    pool_size: int = Field(default=5, ge=1, le=1000)
    max_overflow: int = Field(default=10, ge=0, le=1000)
    pool_timeout: float = Field(default=30.0, gt=0)
    pool_recycle: int = Field(default=1800, ge=-1, description="seconds; -1 = never")
    pool_pre_ping: bool = True
    echo: bool = False

    connect_attempts: int = Field(default=6, ge=1, le=100)
    connect_backoff_initial: float = Field(default=0.25, gt=0)
    connect_backoff_max: float = Field(default=5.0, gt=0)
    # A server that is starting refuses connections for a moment, so a refusal is retried; but
    # a wrong address must not look like a hang: raise this for orchestrated start-ups.
    connect_deadline: float = Field(default=5.0, gt=0, description="seconds for all attempts")

    health_check_timeout: float = Field(default=5.0, gt=0)
    shutdown_timeout: float = Field(default=10.0, ge=0)

    max_file_bytes: int = Field(default=1024 * 1024, ge=1)
    max_files_per_batch: int = Field(default=10_000, ge=1)
    max_thought_bytes: int = Field(default=64 * 1024, ge=1)

    def target(self) -> ConnectionTarget:
        """Return the validated connection target (computed from the URL on every call)."""
        return parse_database_url(self.database_url.get_secret_value(), pooler=self.pooler)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "database_url":
                yield name, _mask_raw(self.database_url.get_secret_value())
            else:
                yield name, value


def _mask_raw(raw: str) -> str:
    try:
        return parse_database_url(raw).masked
    except InvalidDatabaseURLError:
        return "<invalid URL>"


def load_settings(**overrides: Any) -> AppDataSettings:
    """Read the settings from the environment (keyword arguments win) and validate the URL.

    Raises:
        ConfigurationError: a setting is missing or malformed (the message never echoes the URL).
        InvalidDatabaseURLError: the URL cannot be used.
    """
    try:
        settings = AppDataSettings(**overrides)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"invalid app_data settings: {problems}") from None
    settings.target()
    return settings


@functools.cache
def get_settings() -> AppDataSettings:
    """The process's settings, read from the environment once (``get_settings.cache_clear()``)."""
    return load_settings()


# -- connection strings -------------------------------------------------------------------------

# Secrets besides the two `mask_dsn` already hides (password, sslpassword).
_OTHER_SECRETS = ("oauth_client_secret", "scram_client_key", "scram_server_key")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SCHEMES = {"postgresql", "postgres"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_KV_KEYS = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)\s*=")


@functools.cache
def _libpq_keywords() -> frozenset[str]:
    return frozenset(
        d.keyword.decode() for d in psycopg.pq.Conninfo.get_defaults() if d.keyword is not None
    )


@dataclass(frozen=True)
class ConnectionTarget:
    """A validated libpq connection string and whether it goes through a transaction pooler."""

    conninfo: str = field(repr=False)
    pooler: bool

    @property
    def masked(self) -> str:
        """The connection string with every secret replaced by ``***``."""
        return _mask_conninfo(self.conninfo)

    @property
    def sslmode(self) -> str | None:
        """The ``sslmode`` the URL asks for (None: libpq's default, ``prefer``)."""
        return validate_dsn(self.conninfo).get("sslmode")

    def __repr__(self) -> str:
        return f"ConnectionTarget({self.masked!r}, pooler={self.pooler})"


def _mask_conninfo(conninfo: str) -> str:
    params = validate_dsn(conninfo)
    extra = {k: "***" for k in _OTHER_SECRETS if k in params}
    return mask_dsn(make_conninfo(conninfo, **extra) if extra else conninfo)


def _bool_param(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InvalidDatabaseURLError(f"URL parameter {name}={value!r} must be true or false")


def _split_url(raw: str) -> tuple[str, dict[str, str]]:
    """Turn a URL into a libpq URL plus the app-level parameters libpq does not know."""
    scheme, _, rest = raw.partition("://")
    scheme = scheme.lower()
    base, plus, driver = scheme.partition("+")
    if base not in _SCHEMES:
        raise InvalidDatabaseURLError(
            f"unsupported URL scheme {scheme!r}: use postgresql+psycopg://, postgresql:// "
            "or a libpq key=value string"
        )
    if plus and driver != "psycopg":
        raise InvalidDatabaseURLError(
            f"driver {driver!r} is not supported: app_data uses psycopg 3 "
            "(postgresql+psycopg://...), the driver of the checkpoint savers"
        )
    try:
        parts = urlsplit("postgresql://" + rest)
    except ValueError:  # e.g. an unbalanced IPv6 bracket; the message could quote the URL
        raise InvalidDatabaseURLError("the database URL is not a valid URL") from None
    query: list[tuple[str, str]] = []
    app: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("pgbouncer", "ssl", "schema"):
            app[key] = value
        elif key not in _libpq_keywords():
            raise InvalidDatabaseURLError(
                f"unknown connection parameter {key!r} in the URL's query string"
            )
        else:
            query.append((key, value))
    url = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
    return url, app


def parse_database_url(raw: str, *, pooler: bool | None = None) -> ConnectionTarget:
    """Validate `raw` and return the libpq connection string app_data connects with.

    Args:
        raw: ``postgresql+psycopg://``/``postgresql://`` URL or libpq key=value string.
        pooler: force pooler mode on or off; None detects it (``pgbouncer=true``, pooler port).

    Raises:
        InvalidDatabaseURLError: with a message saying what is wrong (never the password).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidDatabaseURLError(
            "the database URL is empty: set APP_DATA_DATABASE_URL (or CHECKPOINT_PG_DSN)"
        )
    raw = raw.strip()
    app: dict[str, str] = {}
    if "://" in raw:
        raw, app = _split_url(raw)
    try:
        params = validate_dsn(raw)
    except InvalidDSNError:
        unknown = sorted(set(_KV_KEYS.findall(raw)) - _libpq_keywords()) if "://" not in raw else []
        if unknown:
            raise InvalidDatabaseURLError(
                f"unknown connection parameter(s) {', '.join(unknown)}"
            ) from None
        raise InvalidDatabaseURLError(
            "the database URL is not a valid postgresql:// URL or libpq key=value string"
        ) from None

    if "ssl" in app:
        ssl = app["ssl"].strip().lower()
        mode = ssl if ssl in _SSLMODES else ("require" if _bool_param("ssl", ssl) else "disable")
        if params.get("sslmode", mode) != mode:
            raise InvalidDatabaseURLError(
                f"ssl={app['ssl']!r} contradicts sslmode={params['sslmode']!r}"
            )
        params["sslmode"] = mode
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in _SSLMODES:
        raise InvalidDatabaseURLError(f"sslmode {sslmode!r} is not one of {', '.join(_SSLMODES)}")
    if "schema" in app:
        schema = app["schema"]
        if not _SCHEMA_NAME.match(schema):
            raise InvalidDatabaseURLError(f"schema={schema!r} is not a plain schema name")
        options = params.get("options", "")
        params["options"] = f"{options} -c search_path={schema}".strip()
    for port in params.get("port", "").split(","):
        if port and not port.strip().isdigit():
            raise InvalidDatabaseURLError(f"port {port!r} is not a number")

    conninfo = tuned_dsn(make_conninfo("", **params))
    detected = pooler is None
    if pooler is None:
        hinted = _bool_param("pgbouncer", app["pgbouncer"]) if "pgbouncer" in app else False
        try:
            pooler = hinted or is_pooled(conninfo)
        except InvalidDSNError as exc:
            raise InvalidDatabaseURLError(str(exc)) from None
    # Only when the URL itself says pooler: callers pass pooler=True also to get a one-shot
    # engine (no client pool, no prepared statements), as the migrations do.
    if pooler and "options" in params and detected:
        # PgBouncer refuses the startup parameter, or (ignore_startup_parameters) drops it:
        # the tables would then be looked for in the role's default search_path.
        raise InvalidDatabaseURLError(
            "schema=/options= cannot reach the server through a transaction pooler (PgBouncer "
            "refuses or drops startup options): set the schema on the role instead "
            "(ALTER ROLE … SET search_path = …) or connect without the pooler"
        )
    return ConnectionTarget(conninfo=conninfo, pooler=pooler)


# -- engine -------------------------------------------------------------------------------------


class AppSession(Session):
    """The ORM session class of app_data: refuses writes to the LangGraph mappings."""


event.listen(AppSession, "do_orm_execute", reject_writes)


def create_engine(settings: AppDataSettings) -> AsyncEngine:
    """Create the async engine `settings` describe (not yet connected).

    Pooler mode gives a ``NullPool`` and connections without prepared statements; otherwise a
    queue pool sized by the settings, with pre-ping and recycling.
    """
    target = settings.target()
    conninfo = target.conninfo
    prepare_threshold = None if target.pooler else 5
    reached = False

    async def connect() -> psycopg.AsyncConnection[Any]:
        # Until the server was reached once, a failure is the address's (typed, with libpq's
        # reason, never retried as a lost connection); afterwards, a transient fault.
        nonlocal reached
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo, prepare_threshold=prepare_threshold
            )
        except psycopg.OperationalError as exc:
            if reached:
                raise
            raise _connect.failure(exc, conninfo) from None
        reached = True
        return conn

    kwargs: dict[str, Any] = {
        "async_creator": connect,
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
            pool_pre_ping=settings.pool_pre_ping,
        )
    # The URL only selects the dialect: the connection comes from `connect`, so no secret is
    # ever part of the engine's URL (and so of its repr or its log lines).
    return _create_async_engine(URL.create("postgresql+psycopg"), **kwargs)


# -- errors -------------------------------------------------------------------------------------

_FOREIGN_KEYS: dict[str, type[UnknownReferenceError]] = {
    "Project_userId_fkey": UnknownUserError,
    "ProjectFile_project_id_fkey": UnknownProjectError,
    "ProjectThought_project_id_fkey": UnknownProjectError,
}
# Server errors that will not go away by trying again.
_PERMANENT_CONNECT_ERRORS = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
    "password is required",
    "does not support ssl",
    "invalid sslmode",
    "certificate",
    "failed to resolve host",
    "could not translate host name",
)


def _describe(exc: BaseException) -> str:
    """A one-line, secret-free description of a database or network error."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(orig, psycopg.Error) and orig.diag.message_primary:
        message = orig.diag.message_primary
    else:
        message = str(orig)
    message = " ".join(message.split())
    return f"{type(orig).__name__}: {message}" if message else type(orig).__name__


def _connect_failure(exc: BaseException) -> ConnectionFailedError | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return orig if isinstance(orig, ConnectionFailedError) else None


def _is_transient_connect_error(exc: BaseException) -> bool:
    if (failed := _connect_failure(exc)) is not None:
        return not any(marker in failed.reason.lower() for marker in _PERMANENT_CONNECT_ERRORS)
    if isinstance(exc, DBAPIError | psycopg.OperationalError | OSError):
        text_ = str(exc.orig if isinstance(exc, DBAPIError) else exc).lower()
        return not any(marker in text_ for marker in _PERMANENT_CONNECT_ERRORS)
    return False


def _retryable(exc: AppDataError) -> bool:
    """Whether a unit of work that raised `exc` may simply run again: a transient fault that
    came before COMMIT was sent (`transaction` turns one during COMMIT into
    `CommitOutcomeUnknownError`)."""
    if isinstance(exc, CommitOutcomeUnknownError):
        return False
    cause = exc.__cause__
    return isinstance(cause, DBAPIError) and classify(cause) is not None


def translate_error(exc: DBAPIError) -> AppDataError:
    """Map a database error raised in a unit of work to the typed error it means."""
    orig = exc.orig
    if isinstance(orig, ConnectionFailedError):
        return DatabaseConnectionFailedError(orig.endpoint, orig.reason)
    detail = _describe(exc)
    if isinstance(orig, psycopg.errors.ForeignKeyViolation):
        constraint = orig.diag.constraint_name or ""
        kind = _FOREIGN_KEYS.get(constraint, UnknownReferenceError)
        return kind(orig.diag.message_detail or detail)
    if isinstance(orig, psycopg.errors.UniqueViolation):
        return ConflictError(orig.diag.message_detail or detail)
    if isinstance(orig, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedObject):
        return DatabaseError(
            f"{detail} (is the schema set up? app_data.migrations.upgrade() creates the "
            "application tables, the savers' and the store's setup() the LangGraph ones)"
        )
    lost = exc.connection_invalidated or (
        isinstance(orig, psycopg.OperationalError)
        and (orig.sqlstate is None or orig.sqlstate.startswith(("08", "57P")))
    )
    if lost:
        return DatabaseUnavailableError(f"the database connection failed: {detail}")
    return DatabaseError(detail)


# -- the database -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolStatus:
    """What the connection pool holds right now.

    For a ``NullPool`` (pooler mode) there is nothing to count: the numbers are None and
    `description` says why, instead of the call failing.
    """

    kind: str
    pooled: bool
    size: int | None
    checked_in: int | None
    checked_out: int | None
    overflow: int | None
    description: str


@dataclass(frozen=True)
class HealthReport:
    """The result of `Database.health_check`."""

    healthy: bool
    latency_ms: float
    pool: PoolStatus
    server_version: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data (for a health endpoint)."""
        return asdict(self)


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
        """Check the database answers, retrying transient failures with capped backoff + jitter.

        Waits ``min(connect_backoff_max, connect_backoff_initial * 2**n)`` plus a random jitter
        of up to ``connect_backoff_initial`` between attempts, for at most ``connect_attempts``
        attempts and ``connect_deadline`` seconds. Failures that retrying cannot fix (unknown
        database, authentication) fail at once.

        Raises:
            DatabaseUnavailableError: the database did not answer (message masked).
            DatabaseClosedError: the database was closed.
        """
        self._check_open()
        s = self.settings
        started = time.monotonic()
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(s.connect_attempts) | stop_before_delay(s.connect_deadline),
            wait=wait_exponential(multiplier=s.connect_backoff_initial, max=s.connect_backoff_max)
            + wait_random(0, s.connect_backoff_initial),
            retry=retry_if_exception(_is_transient_connect_error),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    version = await self._ping()
        except (SQLAlchemyError, psycopg.Error, OSError) as exc:
            elapsed = time.monotonic() - started
            failed = _connect_failure(exc)
            why = failed.reason if failed is not None else _describe(exc)
            where = failed.endpoint if failed is not None else self.target.masked
            message = (
                f"could not connect to {where} after {attempts} attempt(s) in {elapsed:.1f}s: {why}"
            )
            log.error("%s", message)
            if failed is not None:
                raise DatabaseConnectionFailedError(failed.endpoint, why, message) from None
            raise DatabaseUnavailableError(message) from exc
        log.info(
            "connected to %s (PostgreSQL %s) after %d attempt(s) in %.2fs",
            self.target.masked,
            version,
            attempts,
            time.monotonic() - started,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "database %s not reachable (attempt %d of %d): %s; retrying in %.2fs",
            self.target.masked,
            state.attempt_number,
            self.settings.connect_attempts,
            _describe(error) if error is not None else "unknown error",
            state.upcoming_sleep,
        )

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
            if not _retryable(exc):
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
            log_retry(what, cast(BaseException, last.__cause__), attempts, policy, delay)
            await asyncio.sleep(delay)
            attempts += 1
            try:
                return await unit()
            except AppDataError as exc:
                if not _retryable(exc):
                    raise
                last = exc

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError(f"{self!r} is closed; no new unit of work can start")

    # -- health ---------------------------------------------------------------------------------

    def pool_status(self) -> PoolStatus:
        """Report the connection pool's occupancy (never fails, whatever the pool class)."""
        pool = self.engine.pool
        if isinstance(pool, QueuePool):
            return PoolStatus(
                kind=type(pool).__name__,
                pooled=True,
                size=pool.size(),
                checked_in=pool.checkedin(),
                checked_out=pool.checkedout(),
                overflow=pool.overflow(),
                description=pool.status(),
            )
        reason = (
            "no client-side pool: the transaction pooler (PgBouncer/Supavisor) pools connections"
            if isinstance(pool, NullPool)
            else pool.status()
        )
        return PoolStatus(
            kind=type(pool).__name__,
            pooled=False,
            size=None,
            checked_in=None,
            checked_out=None,
            overflow=None,
            description=reason,
        )

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
                error = _describe(exc)
        latency_ms = (time.perf_counter() - started) * 1000.0
        if error is not None:
            log.warning("health check of %s failed: %s", self.target.masked, error)
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
            log.info(
                "closing %s: waiting for %d unit(s) of work", self.target.masked, len(self._running)
            )
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except asyncio.TimeoutError:
                log.warning(
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
                        log.debug("closing a running unit of work failed: %s", _describe(exc))
        await self.engine.dispose()
        log.info("closed the connection pool of %s", self.target.masked)
