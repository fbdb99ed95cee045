"""Typed errors: each names the problem; none carries a secret."""

from __future__ import annotations

__all__ = [
    "CheckpointPgError",
    "ConnectionUnusableError",
    "InvalidConfigError",
    "InvalidMetadataError",
    "SchemaNotReadyError",
]


class CheckpointPgError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidConfigError(CheckpointPgError, ValueError):
    """A `RunnableConfig` lacks a required key or holds a value that cannot be stored."""


class InvalidMetadataError(CheckpointPgError, ValueError):
    """Checkpoint metadata cannot be stored as JSON (wrong type, NUL byte, …)."""


class ConnectionUnusableError(CheckpointPgError, RuntimeError):
    """The connection handed to the saver is closed or stuck in a failed transaction."""


class SchemaNotReadyError(CheckpointPgError, RuntimeError):
    """The checkpoint tables are missing: call `setup()` first."""
