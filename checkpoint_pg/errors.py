"""Typed errors: each names the problem; none carries a secret.

Every error the package raises on purpose is a `CheckpointPgError`. The ones about
connections, faults and set-up are shared with the store and app_data and live in the
runtime (`checkpoint_pg._runtime.errors`); they are re-exported here, beside the savers' own.
"""

from __future__ import annotations

from checkpoint_pg._runtime.errors import (
    CheckpointPgError,
    CitusUnavailableError,
    ConnectionFailedError,
    ConnectionLostError,
    ConnectionUnusableError,
    IntegrityError,
    InvalidDSNError,
    InvalidKeyringError,
    MissingExtraError,
    OperationInterruptedError,
    PoolExhaustedError,
    ReadOnlyServerError,
    RetriesExhaustedError,
    SchemaMismatchError,
    SchemaNotReadyError,
    TamperedValueError,
    TransientFaultError,
)

__all__ = [
    "CheckpointPgError",
    "CitusUnavailableError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConnectionUnusableError",
    "DanglingDeltaError",
    "DeltaStorageError",
    "IntegrityError",
    "InvalidCacheKeyError",
    "InvalidConfigError",
    "InvalidDSNError",
    "InvalidKeyringError",
    "InvalidMetadataError",
    "InvalidRetentionPolicyError",
    "MissingExtraError",
    "OperationInterruptedError",
    "PoolExhaustedError",
    "ReadOnlyServerError",
    "RetriesExhaustedError",
    "SchemaMismatchError",
    "SchemaNotReadyError",
    "TamperedValueError",
    "TransientFaultError",
    "UnserializableValueError",
]


class InvalidConfigError(CheckpointPgError, ValueError):
    """A `RunnableConfig` lacks a required key or holds a value that cannot be stored."""


class InvalidCacheKeyError(CheckpointPgError, ValueError):
    """A node-cache key, namespace or TTL that `PostgresCache` cannot store (wrong type, a NUL
    in the key, longer than PostgreSQL's index limit)."""


class InvalidMetadataError(CheckpointPgError, ValueError):
    """Checkpoint metadata cannot be stored as JSON (wrong type, NUL byte, …)."""


class UnserializableValueError(InvalidConfigError, TypeError):
    """The serializer cannot serialise a channel value or a write (too deeply nested, a type
    it does not know, a dict key it refuses). Also a `TypeError`, which is what LangGraph's
    serializer raises for these (and so what `InMemorySaver` raises)."""


class InvalidRetentionPolicyError(InvalidConfigError):
    """A `RetentionPolicy` (or a sweeper interval) holds a value of the wrong type or range."""


class DeltaStorageError(CheckpointPgError, RuntimeError):
    """A row stored in delta storage (``storage="delta"``) met a saver that does not read it.

    The message names the way out: open the saver with ``storage="delta"``, or convert the
    thread to the official format with ``checkpoint-pg convert-storage --to official``.
    """


class DanglingDeltaError(DeltaStorageError):
    """A delta row whose base is missing or malformed: the value cannot be rebuilt."""
