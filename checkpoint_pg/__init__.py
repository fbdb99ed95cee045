"""PostgreSQL checkpoint savers for LangGraph, drop-in for `langgraph-checkpoint-postgres`."""

from checkpoint_pg.aio import AsyncPostgresSaver
from checkpoint_pg.errors import (
    CheckpointPgError,
    ConnectionUnusableError,
    InvalidConfigError,
    InvalidMetadataError,
    InvalidRetentionPolicyError,
    SchemaNotReadyError,
)
from checkpoint_pg.retention import RetentionPolicy, RetentionReport, ThreadInfo, ThreadPage
from checkpoint_pg.saver import PostgresSaver
from checkpoint_pg.serde import CompressingSerializer

__all__ = [
    "AsyncPostgresSaver",
    "CheckpointPgError",
    "CompressingSerializer",
    "ConnectionUnusableError",
    "InvalidConfigError",
    "InvalidMetadataError",
    "InvalidRetentionPolicyError",
    "PostgresSaver",
    "RetentionPolicy",
    "RetentionReport",
    "SchemaNotReadyError",
    "ThreadInfo",
    "ThreadPage",
]
