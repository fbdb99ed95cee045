"""PostgreSQL checkpoint savers for LangGraph, drop-in for `langgraph-checkpoint-postgres`.

Names resolve on first use, so that the runtime, the store and app_data, which import
`checkpoint_pg._runtime`, do not load the savers with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from checkpoint_pg.aio import AsyncPostgresSaver
    from checkpoint_pg.cache import AsyncPostgresCache, PostgresCache
    from checkpoint_pg.errors import (
        CheckpointPgError,
        ConnectionFailedError,
        ConnectionLostError,
        ConnectionUnusableError,
        InvalidConfigError,
        InvalidMetadataError,
        InvalidRetentionPolicyError,
        OperationInterruptedError,
        PoolExhaustedError,
        ReadOnlyServerError,
        RetriesExhaustedError,
        SchemaMismatchError,
        SchemaNotReadyError,
        TransientFaultError,
        UnserializableValueError,
    )
    from checkpoint_pg.retention import RetentionPolicy, RetentionReport, ThreadInfo, ThreadPage
    from checkpoint_pg.retry import RetryPolicy
    from checkpoint_pg.serde import CompressingSerializer
    from checkpoint_pg.sync import PostgresSaver

_HOMES: dict[str, str] = {
    "AsyncPostgresCache": "checkpoint_pg.cache",
    "PostgresCache": "checkpoint_pg.cache",
    "InvalidCacheKeyError": "checkpoint_pg.errors",
    "AsyncPostgresSaver": "checkpoint_pg.aio",
    "CheckpointPgError": "checkpoint_pg.errors",
    "CompressingSerializer": "checkpoint_pg.serde",
    "ConnectionFailedError": "checkpoint_pg.errors",
    "ConnectionLostError": "checkpoint_pg.errors",
    "ConnectionUnusableError": "checkpoint_pg.errors",
    "IntegrityError": "checkpoint_pg.errors",
    "InvalidConfigError": "checkpoint_pg.errors",
    "InvalidMetadataError": "checkpoint_pg.errors",
    "InvalidRetentionPolicyError": "checkpoint_pg.errors",
    "OperationInterruptedError": "checkpoint_pg.errors",
    "PoolExhaustedError": "checkpoint_pg.errors",
    "PostgresSaver": "checkpoint_pg.sync",
    "ReadOnlyServerError": "checkpoint_pg.errors",
    "RetentionPolicy": "checkpoint_pg.retention",
    "RetentionReport": "checkpoint_pg.retention",
    "RetriesExhaustedError": "checkpoint_pg.errors",
    "RetryPolicy": "checkpoint_pg.retry",
    "RowBoundEncryption": "checkpoint_pg.encryption",
    "SchemaMismatchError": "checkpoint_pg.errors",
    "SchemaNotReadyError": "checkpoint_pg.errors",
    "TamperedValueError": "checkpoint_pg.errors",
    "ThreadInfo": "checkpoint_pg.retention",
    "ThreadPage": "checkpoint_pg.retention",
    "TransientFaultError": "checkpoint_pg.errors",
    "UnserializableValueError": "checkpoint_pg.errors",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'checkpoint_pg' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "AsyncPostgresCache",
    "AsyncPostgresSaver",
    "CheckpointPgError",
    "CompressingSerializer",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConnectionUnusableError",
    "IntegrityError",
    "InvalidCacheKeyError",
    "InvalidConfigError",
    "InvalidMetadataError",
    "InvalidRetentionPolicyError",
    "OperationInterruptedError",
    "PoolExhaustedError",
    "PostgresCache",
    "PostgresSaver",
    "ReadOnlyServerError",
    "RetentionPolicy",
    "RetentionReport",
    "RetriesExhaustedError",
    "RetryPolicy",
    "RowBoundEncryption",
    "SchemaMismatchError",
    "SchemaNotReadyError",
    "TamperedValueError",
    "ThreadInfo",
    "ThreadPage",
    "TransientFaultError",
    "UnserializableValueError",
]
