"""Read-only SQLAlchemy mappings of the LangGraph tables the savers and the store create.

The checkpoint savers (`checkpoint_pg`) and the store (`store`) own these tables: they create
and migrate them in ``setup()`` and are their only writers. The application maps them to report
on agent activity (a project's threads, when they last ran, what the store remembers), never
to write: the rows are in LangGraph's serialised format and a write that bypassed the savers
would corrupt threads. So:

- they live in their own `AgentBase.metadata`, which app_data's migrations never create or
  alter (`app_data.models.Base.metadata` is the only target of the migrations);
- any ORM insert, update or delete of them raises `ReadOnlyModelError`, at flush time (mapper
  events) and for ORM-enabled ``insert()/update()/delete()`` statements run through an
  app_data session (`reject_writes`).

Columns, keys and indexes match the savers' DDL (official 3.2.0 migrations plus this project's
own) exactly; the drift test in ``tests/app_data`` proves it with alembic's schema comparison.
Not mapped: ``store_vectors_embedding_idx`` (its kind and parameters depend on the store's index
configuration, and a flat index has none), the store's optional range-filter expression indexes
(``store_range_*_idx``, configured per deployment) and the SQL functions ``store_jsonb_number``
and ``store_jsonb_number_full``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Text,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, TIMESTAMP
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, ORMExecuteState, mapped_column
from sqlalchemy.types import UserDefinedType

from app_data.errors import ReadOnlyModelError

__all__ = [
    "AgentBase",
    "Checkpoint",
    "CheckpointBlob",
    "CheckpointMigration",
    "CheckpointPgMigration",
    "CheckpointWrite",
    "StoreItem",
    "StoreMigration",
    "StorePgMigration",
    "StoreVector",
    "VectorMigration",
    "reject_writes",
]

_EMPTY = text("''::text")
_NOW = text("CURRENT_TIMESTAMP")


class Vector(UserDefinedType[Any]):
    """pgvector's ``vector`` column, read as its text form (``'[0.1,0.2]'``)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"

    def column_expression(self, colexpr: Any) -> Any:
        return colexpr.op("::")(text("text"))

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class AgentBase(DeclarativeBase):
    """Declarative base of the LangGraph tables; its metadata is never migrated by app_data."""

    metadata = MetaData()


def _migration_version() -> Mapped[int]:
    return mapped_column(Integer, primary_key=True, autoincrement=False)


# -- checkpoint savers (checkpoint_pg) ----------------------------------------------------------


class Checkpoint(AgentBase):
    """One checkpoint of a thread (``checkpoints``)."""

    __tablename__ = "checkpoints"
    __table_args__ = (
        Index("checkpoints_thread_id_idx", "thread_id"),
        Index(
            "checkpoints_metadata_idx",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        ),
    )

    thread_id: Mapped[str] = mapped_column(Text, primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True, server_default=_EMPTY)
    checkpoint_id: Mapped[str] = mapped_column(Text, primary_key=True)
    parent_checkpoint_id: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(Text)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSONB)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=text("'{}'::jsonb")
    )


class CheckpointBlob(AgentBase):
    """A serialised channel value at one version (``checkpoint_blobs``)."""

    __tablename__ = "checkpoint_blobs"
    __table_args__ = (Index("checkpoint_blobs_thread_id_idx", "thread_id"),)

    thread_id: Mapped[str] = mapped_column(Text, primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True, server_default=_EMPTY)
    channel: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[str] = mapped_column(Text, primary_key=True)
    type: Mapped[str] = mapped_column(Text)
    blob: Mapped[bytes | None] = mapped_column(BYTEA)


class CheckpointWrite(AgentBase):
    """A pending write of a task (``checkpoint_writes``)."""

    __tablename__ = "checkpoint_writes"
    __table_args__ = (Index("checkpoint_writes_thread_id_idx", "thread_id"),)

    thread_id: Mapped[str] = mapped_column(Text, primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True, server_default=_EMPTY)
    checkpoint_id: Mapped[str] = mapped_column(Text, primary_key=True)
    task_id: Mapped[str] = mapped_column(Text, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(Text)
    blob: Mapped[bytes] = mapped_column(BYTEA)
    task_path: Mapped[str] = mapped_column(Text, server_default=_EMPTY)


class CheckpointMigration(AgentBase):
    """The official saver's migration versions (``checkpoint_migrations``)."""

    __tablename__ = "checkpoint_migrations"

    v: Mapped[int] = _migration_version()


class CheckpointPgMigration(AgentBase):
    """checkpoint_pg's own migration versions (``checkpoint_pg_migrations``)."""

    __tablename__ = "checkpoint_pg_migrations"

    v: Mapped[int] = _migration_version()
    applied_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=_NOW)


# -- store (store) ------------------------------------------------------------------------------


class StoreItem(AgentBase):
    """A long-term memory item (``store``)."""

    __tablename__ = "store"
    __table_args__ = (
        Index("store_prefix_idx", "prefix", postgresql_ops={"prefix": "text_pattern_ops"}),
        Index(
            "idx_store_expires_at",
            "expires_at",
            postgresql_where=text("expires_at IS NOT NULL"),
        ),
        Index(
            "store_value_idx",
            "value",
            postgresql_using="gin",
            postgresql_ops={"value": "jsonb_path_ops"},
        ),
    )

    prefix: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime | None] = mapped_column(
        TIMESTAMP(timezone=True), server_default=_NOW
    )
    updated_at: Mapped[datetime | None] = mapped_column(
        TIMESTAMP(timezone=True), server_default=_NOW
    )
    expires_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    ttl_minutes: Mapped[int | None] = mapped_column(Integer)
    ttl_exact_minutes: Mapped[float | None] = mapped_column(Double)
    ttl_exact_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))


class StoreVector(AgentBase):
    """An embedding of one field of a store item (``store_vectors``; with an index config only)."""

    __tablename__ = "store_vectors"
    __table_args__ = (
        ForeignKeyConstraint(
            ["prefix", "key"],
            ["store.prefix", "store.key"],
            name="store_vectors_prefix_key_fkey",
            ondelete="CASCADE",
        ),
    )

    prefix: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    field_name: Mapped[str] = mapped_column(Text, primary_key=True)
    embedding: Mapped[str | None] = mapped_column(Vector())
    created_at: Mapped[datetime | None] = mapped_column(
        TIMESTAMP(timezone=True), server_default=_NOW
    )
    updated_at: Mapped[datetime | None] = mapped_column(
        TIMESTAMP(timezone=True), server_default=_NOW
    )


class StoreMigration(AgentBase):
    """The official store's migration versions (``store_migrations``)."""

    __tablename__ = "store_migrations"

    v: Mapped[int] = _migration_version()


class StorePgMigration(AgentBase):
    """The store's own migration versions (``store_pg_migrations``)."""

    __tablename__ = "store_pg_migrations"

    v: Mapped[int] = _migration_version()


class VectorMigration(AgentBase):
    """The official store's vector migration versions (``vector_migrations``)."""

    __tablename__ = "vector_migrations"

    v: Mapped[int] = _migration_version()


# Tables present whatever the configuration, and those that only a vector index config adds.
CHECKPOINT_TABLES = (
    "checkpoints",
    "checkpoint_blobs",
    "checkpoint_writes",
    "checkpoint_migrations",
    "checkpoint_pg_migrations",
)
STORE_TABLES = ("store", "store_migrations", "store_pg_migrations")
VECTOR_TABLES = ("store_vectors", "vector_migrations")


# -- read-only enforcement ----------------------------------------------------------------------


def _refuse(mapper: Mapper[Any], connection: object, target: object) -> None:
    raise ReadOnlyModelError(
        f"{mapper.class_.__name__} maps the LangGraph table {mapper.local_table}, which only "
        "the checkpoint savers and the store write; app_data reads it"
    )


for _event in ("before_insert", "before_update", "before_delete"):
    event.listen(AgentBase, _event, _refuse, propagate=True)


def reject_writes(state: ORMExecuteState) -> None:
    """``do_orm_execute`` hook: refuse ORM insert/update/delete statements on LangGraph tables."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, AgentBase):
        raise ReadOnlyModelError(
            f"{mapper.class_.__name__} maps the LangGraph table {mapper.local_table}, which only "
            "the checkpoint savers and the store write; app_data reads it"
        )
