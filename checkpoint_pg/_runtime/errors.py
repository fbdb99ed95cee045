"""The errors the savers, the store and app_data share: connections, faults, set-up.

Each names the problem; none carries a secret. `checkpoint_pg.errors` re-exports them.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

__all__ = [
    "CheckpointPgError",
    "CitusUnavailableError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConnectionUnusableError",
    "IntegrityError",
    "InvalidDSNError",
    "InvalidKeyringError",
    "MissingExtraError",
    "OperationInterruptedError",
    "PoolExhaustedError",
    "ReadOnlyServerError",
    "RetriesExhaustedError",
    "SchemaMismatchError",
    "SchemaNotReadyError",
    "TamperedValueError",
    "TransientFaultError",
]


class CheckpointPgError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidDSNError(CheckpointPgError, ValueError):
    """The connection string cannot be parsed; the message never contains the secret."""


class InvalidKeyringError(CheckpointPgError, ValueError):
    """A keyring for `RowBoundEncryption` is malformed (a key of the wrong length, no current
    key, bad JSON). The message names the key id, never a key."""


class IntegrityError(CheckpointPgError):
    """A stored value failed an integrity check on load and was not deserialised."""


class TamperedValueError(IntegrityError):
    """A stored value is not what this package wrote for its row: unencrypted, altered, moved
    from another row, or sealed with a key that is not in the keyring. `row` names the row
    (its table and key columns); neither the message nor `row` holds a key or a plaintext."""

    def __init__(self, row: str, reason: str) -> None:
        super().__init__(f"{row}: {reason}; the value was not loaded")
        self.row = row
        self.reason = reason


class MissingExtraError(CheckpointPgError, ImportError):
    """A part of the package was asked for whose optional dependencies are not installed; the
    message names the ``pip install`` that adds them."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class ConnectionUnusableError(CheckpointPgError, RuntimeError):
    """The connection handed to the saver is closed or stuck in a failed transaction."""


class CitusUnavailableError(CheckpointPgError, RuntimeError):
    """`setup(distributed=True)` on a database without the ``citus`` extension."""


class SchemaMismatchError(CheckpointPgError, RuntimeError):
    """The existing tables do not have the layout a setup option asks for (for instance
    ``partitions=`` over tables created unpartitioned); nothing was changed."""


class SchemaNotReadyError(CheckpointPgError, RuntimeError):
    """The checkpoint tables are missing: call `setup()` first."""


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


class ReadOnlyServerError(CheckpointPgError, psycopg.errors.ReadOnlySqlTransaction):
    """A write reached a server that only reads: a hot standby (or a server or session set
    ``default_transaction_read_only``). PostgreSQL answered SQLSTATE 25006. Never retried:
    the same server refuses again. ``endpoint`` names the server (host, port, database,
    user), never a password. The cure is a DSN that lists every node and asks for the
    primary: ``host=a,b port=5432,5432 target_session_attrs=read-write``."""

    def __init__(self, endpoint: str, message: str | None = None, *, standby: bool = True) -> None:
        what = "is a read-only standby" if standby else "runs read-only transactions"
        super().__init__(
            message
            or f"the server {endpoint} {what} and refused a write (SQLSTATE 25006): connect "
            "to the primary: list every node in the DSN and add target_session_attrs=read-write"
        )
        self.endpoint = endpoint

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.endpoint, str(self)))


# Users meet these as `checkpoint_pg.errors.X` (tracebacks, reprs, pickles): the name they
# import them by, not where they happen to be defined.
for _error in (
    CheckpointPgError,
    InvalidDSNError,
    MissingExtraError,
    ConnectionUnusableError,
    SchemaNotReadyError,
    TransientFaultError,
    RetriesExhaustedError,
    ConnectionLostError,
    OperationInterruptedError,
    PoolExhaustedError,
    ConnectionFailedError,
    ReadOnlyServerError,
):
    _error.__module__ = "checkpoint_pg.errors"
