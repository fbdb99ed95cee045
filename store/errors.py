"""Typed errors of the store: each names the problem; none carries a secret."""

from __future__ import annotations

from langgraph.store.base import InvalidNamespaceError

from checkpoint_pg._runtime.errors import (
    CheckpointPgError,
    IntegrityError,
    SchemaNotReadyError,
    TamperedValueError,
)

__all__ = [
    "IntegrityError",
    "InvalidFilterError",
    "InvalidIndexConfigError",
    "InvalidNamespaceError",
    "InvalidValueError",
    "SchemaNotReadyError",
    "StoreError",
    "TamperedValueError",
    "VectorSupportMissingError",
]


class StoreError(CheckpointPgError):
    """Base class of the store's own errors."""


class InvalidFilterError(StoreError, ValueError):
    """A search filter uses an unknown operator, a non-JSON value or a bad key."""


class InvalidValueError(StoreError, ValueError):
    """An item's value (or key) cannot be stored: not a JSON object, NUL bytes, too large."""


class InvalidIndexConfigError(StoreError, ValueError):
    """The `index=` configuration is inconsistent (dims, distance, index kind, embeddings)."""


class VectorSupportMissingError(StoreError, RuntimeError):
    """Semantic search was configured but the server has no pgvector extension."""
