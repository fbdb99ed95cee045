"""PostgreSQL long-term memory store for LangGraph, drop-in for the official `PostgresStore`."""

from store.aio import AsyncPostgresStore
from store.errors import (
    InvalidFilterError,
    InvalidIndexConfigError,
    InvalidNamespaceError,
    InvalidValueError,
    StoreError,
    VectorSupportMissingError,
)
from store.sync import PostgresStore

__all__ = [
    "AsyncPostgresStore",
    "InvalidFilterError",
    "InvalidIndexConfigError",
    "InvalidNamespaceError",
    "InvalidValueError",
    "PostgresStore",
    "StoreError",
    "VectorSupportMissingError",
]
