"""From database errors to the typed errors of `app_data.errors`, and which ones to retry.

Every description made here is one line and secret-free: the server's primary message or the
driver's, never a connection string.
"""

from __future__ import annotations

import psycopg
import psycopg.errors
from sqlalchemy.exc import DBAPIError

from app_data.errors import (
    AppDataError,
    CommitOutcomeUnknownError,
    ConflictError,
    DatabaseConnectionFailedError,
    DatabaseError,
    DatabaseUnavailableError,
    UnknownProjectError,
    UnknownReferenceError,
    UnknownUserError,
)
from checkpoint_pg._runtime.errors import ConnectionFailedError
from checkpoint_pg._runtime.retry import classify, is_transient

__all__ = [
    "connect_failure",
    "describe",
    "is_transient_connect_error",
    "retryable",
    "translate_error",
]

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


def describe(exc: BaseException) -> str:
    """A one-line, secret-free description of a database or network error."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(orig, psycopg.Error) and orig.diag.message_primary:
        message = orig.diag.message_primary
    else:
        message = str(orig)
    message = " ".join(message.split())
    return f"{type(orig).__name__}: {message}" if message else type(orig).__name__


def connect_failure(exc: BaseException) -> ConnectionFailedError | None:
    """The `ConnectionFailedError` behind `exc`: no connection could be opened at all."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return orig if isinstance(orig, ConnectionFailedError) else None


def is_transient_connect_error(exc: BaseException) -> bool:
    """Whether start-up should try again after `exc`.

    A connection that could not be opened is retried unless the reason is one retrying cannot
    fix (unknown host or database, authentication, SSL): a server that is starting refuses
    connections for a moment. Any other error is judged by the product-wide `is_transient`.
    """
    if (failed := connect_failure(exc)) is not None:
        return not any(marker in failed.reason.lower() for marker in _PERMANENT_CONNECT_ERRORS)
    return is_transient(exc)


def retryable(exc: AppDataError) -> bool:
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
    detail = describe(exc)
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
