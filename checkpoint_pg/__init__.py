"""PostgreSQL checkpoint savers for LangGraph, drop-in for `langgraph-checkpoint-postgres`."""

from checkpoint_pg.aio import AsyncPostgresSaver
from checkpoint_pg.errors import (
    CheckpointPgError,
    ConnectionUnusableError,
    InvalidConfigError,
    InvalidMetadataError,
    SchemaNotReadyError,
)
from checkpoint_pg.saver import PostgresSaver
from checkpoint_pg.serde import CompressingSerializer

__all__ = [
    "AsyncPostgresSaver",
    "CheckpointPgError",
    "CompressingSerializer",
    "ConnectionUnusableError",
    "InvalidConfigError",
    "InvalidMetadataError",
    "PostgresSaver",
    "SchemaNotReadyError",
]
