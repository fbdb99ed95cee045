"""Typed errors: each names the problem; none carries a secret."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

__all__ = [
    "CheckpointPgError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConnectionUnusableError",
    "InvalidConfigError",
    "InvalidMetadataError",
    "InvalidRetentionPolicyError",
    "MissingExtraError",
    "OperationInterruptedError",
    "PoolExhaustedError",
    "RetriesExhaustedError",
    "SchemaMismatchError",
    "SchemaNotReadyError",
    "TransientFaultError",
    "UnserializableValueError",
]


class CheckpointPgError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidConfigError(CheckpointPgError, ValueError):
    """A `RunnableConfig` lacks a required key or holds a value that cannot be stored."""


class InvalidMetadataError(CheckpointPgError, ValueError):
    """Checkpoint metadata cannot be stored as JSON (wrong type, NUL byte, …)."""


class UnserializableValueError(InvalidConfigError, TypeError):
    """The serializer cannot serialise a channel value or a write (too deeply nested, a type
    it does not know, a dict key it refuses). Also a `TypeError`, which is what LangGraph's
    serializer raises for these (and so what `InMemorySaver` raises)."""


class InvalidRetentionPolicyError(InvalidConfigError):
    """A `RetentionPolicy` (or a sweeper interval) holds a value of the wrong type or range."""


class MissingExtraError(CheckpointPgError, ImportError):
    """A part of the package was asked for whose optional dependencies are not installed; the
    message names the ``pip install`` that adds them."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class ConnectionUnusableError(CheckpointPgError, RuntimeError):
    """The connection handed to the saver is closed or stuck in a failed transaction."""


class SchemaNotReadyError(CheckpointPgError, RuntimeError):
    """The checkpoint tables are missing: call `setup()` first."""


class SchemaMismatchError(CheckpointPgError, RuntimeError):
    """The existing tables do not have the layout a setup option asks for (for instance
    ``partitions=`` over tables created unpartitioned); nothing was changed."""


# -- transient faults --------------------------------------------------------------------------
# These subclass psycopg's own classes, so code written for the official package
# (``except psycopg.OperationalError``, ``except PoolTimeout``) still catches them. Each one
# chains (``from``) the driver error it is about; none repeats that error's message text.


class TransientFaultError(CheckpointPgError, psycopg.OperationalError):
    """A transient fault (lost connection, shutdown, serialization failure, deadlock) ended
    an operation and it was not, or no longer, retried. The message says which and why."""


class RetriesExhaustedError(TransientFaultError):
    """Every attempt the `RetryPolicy` allows failed with a transient fault."""


class ConnectionLostError(TransientFaultError, ConnectionUnusableError):
    """The connection was lost and could not be replaced: a single connection handed to the
    saver or store, or one inside the caller's own transaction or pipeline."""


class OperationInterruptedError(TransientFaultError):
    """The connection was lost at a point where running the operation again automatically is
    unsafe or impossible (while committing; in the middle of a multi-statement transaction)."""


class PoolExhaustedError(CheckpointPgError, PoolTimeout, TimeoutError):
    """No pooled connection became free (or could be opened) within the pool's timeout."""


class ConnectionFailedError(CheckpointPgError, psycopg.OperationalError):
    """No connection could be opened: refused, unknown host, wrong password, missing
    database, SSL refused... Raised at once (within ``connect_timeout``), not after a pool's
    timeout. ``endpoint`` says where (host, port, database, user), ``reason`` is the server's
    or libpq's own words; neither holds a password."""

    def __init__(self, endpoint: str, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"cannot connect to {endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.endpoint, self.reason, str(self)))
