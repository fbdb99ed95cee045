"""PostgreSQL checkpoint savers for LangGraph, drop-in for `langgraph-checkpoint-postgres`."""

from checkpoint_pg.aio import AsyncPostgresSaver
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
    RetriesExhaustedError,
    SchemaMismatchError,
    SchemaNotReadyError,
    TransientFaultError,
    UnserializableValueError,
)
from checkpoint_pg.retention import RetentionPolicy, RetentionReport, ThreadInfo, ThreadPage
from checkpoint_pg.retry import RetryPolicy
from checkpoint_pg.saver import PostgresSaver
from checkpoint_pg.serde import CompressingSerializer

__all__ = [
    "AsyncPostgresSaver",
    "CheckpointPgError",
    "CompressingSerializer",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConnectionUnusableError",
    "InvalidConfigError",
    "InvalidMetadataError",
    "InvalidRetentionPolicyError",
    "OperationInterruptedError",
    "PoolExhaustedError",
    "PostgresSaver",
    "RetentionPolicy",
    "RetentionReport",
    "RetriesExhaustedError",
    "RetryPolicy",
    "SchemaMismatchError",
    "SchemaNotReadyError",
    "ThreadInfo",
    "ThreadPage",
    "TransientFaultError",
    "UnserializableValueError",
]
