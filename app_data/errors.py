"""Every error the application data layer raises, in one place.

The contract at the service boundary: a lookup that finds nothing returns ``None``; every other
failure raises a subclass of `AppDataError`. No method signals failure with ``None`` or
``False``. Messages never contain a password: connection strings in them are masked.
"""

from __future__ import annotations

from checkpoint_pg._runtime.errors import ConnectionFailedError

__all__ = [
    "AmbiguousEditError",
    "AppDataError",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "ConflictError",
    "ContentTooLargeError",
    "DatabaseClosedError",
    "DatabaseConnectionFailedError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "EditError",
    "InvalidCursorError",
    "InvalidDatabaseURLError",
    "InvalidInputError",
    "InvalidPathError",
    "InvalidPatternError",
    "MigrationError",
    "MissingScopeError",
    "ProjectAccessError",
    "ReadOnlyModelError",
    "TextNotFoundError",
    "UnknownProjectError",
    "UnknownReferenceError",
    "UnknownUserError",
]


class AppDataError(Exception):
    """Base class of every error raised by `app_data`."""


# -- configuration ------------------------------------------------------------------------------


class ConfigurationError(AppDataError, ValueError):
    """The settings (environment or arguments) are invalid."""


class InvalidDatabaseURLError(ConfigurationError):
    """The database URL cannot be used; the message says why and never shows the password."""


# -- input --------------------------------------------------------------------------------------


class InvalidInputError(AppDataError, ValueError):
    """An argument failed validation at the service boundary; nothing was sent to the database."""


class InvalidPathError(InvalidInputError):
    """A file path is not a normalised relative path (traversal, absolute, NUL byte, ...)."""


class InvalidPatternError(InvalidInputError):
    """A glob pattern is refused (a ``..`` segment, too many brace alternatives)."""


class ContentTooLargeError(InvalidInputError):
    """A file or thought is larger than the configured limit."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size} bytes; the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class InvalidCursorError(InvalidInputError):
    """A pagination cursor was not produced by the same kind of listing."""


class EditError(InvalidInputError):
    """An exact-replacement edit cannot be applied; the file is left as it was."""


class TextNotFoundError(EditError):
    """The text to replace does not occur in the file."""


class AmbiguousEditError(EditError):
    """The text to replace occurs more than once and the edit did not ask to replace them all."""

    def __init__(self, message: str, occurrences: int) -> None:
        super().__init__(message)
        self.occurrences = occurrences


class MissingScopeError(InvalidInputError):
    """An agent tool ran without a user and project in its run's config or context."""


# -- references and conflicts -------------------------------------------------------------------


class UnknownReferenceError(AppDataError, LookupError):
    """A write refers to a row that does not exist (a foreign key would be violated)."""


class UnknownUserError(UnknownReferenceError):
    """A project was created for a user that does not exist."""


class UnknownProjectError(UnknownReferenceError):
    """A file or thought was written to a project that does not exist."""


class ProjectAccessError(UnknownProjectError):
    """No project with that id belongs to the user (missing or someone else's: not told apart)."""


class ConflictError(AppDataError):
    """A create collided with an existing row (same id, same wallet address, ...)."""


class ReadOnlyModelError(AppDataError):
    """A write was attempted through a read-only mapping of a LangGraph table."""


# -- database -----------------------------------------------------------------------------------


class DatabaseError(AppDataError):
    """The database rejected a statement for a reason no more specific error describes."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached (start-up retries exhausted, connection lost, ...)."""


class DatabaseConnectionFailedError(DatabaseUnavailableError, ConnectionFailedError):
    """No connection could be opened (refused, unknown host, wrong password, missing
    database, SSL refused): raised in seconds, never after a pool timeout. Also the savers'
    `ConnectionFailedError` (so a ``psycopg.OperationalError``): ``endpoint`` and ``reason``
    say where and why, without the password."""


class CommitOutcomeUnknownError(DatabaseUnavailableError):
    """The connection was lost while the unit of work was committing: it may or may not have
    been applied, so it was not run again. Check before repeating it."""


class DatabaseClosedError(AppDataError, RuntimeError):
    """The `Database` was closed; no new unit of work can start."""


class MigrationError(AppDataError):
    """Applying or inspecting the schema migrations failed."""
