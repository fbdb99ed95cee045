"""Typed SQLAlchemy 2.0 models of the application tables: users, projects, files and thoughts.

The tables already exist in production, created by the platform's Prisma-managed schema (the
source of truth an earlier data layer was audited against; ``docs/audit.md`` lists the findings
and what this package does about each). These models map onto the tables, they do not redesign
them. Python attributes are snake_case; the columns keep their database names
(``walletAddress`` -> `User.wallet_address`, ``userId`` -> `Project.user_id`, ``metadata`` ->
``metadata_`` because ``metadata`` is reserved by SQLAlchemy's declarative base).

Decisions
---------
Enums are native PostgreSQL enum types, as in the source-of-truth schema (the earlier layer used
``native_enum=False``, which made SQLAlchemy believe the columns were VARCHAR and would have
created VARCHAR columns on an empty database). Adding a label is therefore a migration
(``ALTER TYPE ... ADD VALUE``), which is what the source schema demands anyway. The Python side
uses `str` enums whose values are the database labels.

Timestamps are timezone-aware UTC in Python and ``timestamp without time zone`` holding UTC
wall-clock time in the database (the Prisma convention the existing rows follow). `UTCDateTime`
converts at the boundary: it refuses naive datetimes, converts aware ones to UTC, and truncates
to the column's precision so that a value read back equals the value written (``users`` keeps
milliseconds, ``TIMESTAMP(3)``; the other tables microseconds, ``TIMESTAMP(6)``). Server-side
defaults are ``timezone('utc', now())`` rather than ``CURRENT_TIMESTAMP``, which would store
the *session's* local time in a column without a time zone. Values are normally set from
Python (one clock for a unit of work, injectable in tests); the server defaults serve other
writers.

Identifiers are text generated in Python (UUID4) as the Prisma client does; no database
sequence or ``gen_random_uuid()`` default exists in the source schema.

Assumptions where the known excerpts of the source schema leave details out
---------------------------------------------------------------------------
- Enum type names follow Prisma's convention of naming the type after the schema enum:
  ``"Plan"``, ``"UserStatus"``, ``"SandboxState"``, ``"ProjectStatus"``, ``"ProjectType"``.
- Label lists: the source schema shows ``currentPlan`` as ``Enum('FREE', 'PAY_AS_YOU_GO', ...)``
  next to billing tables ``PayAsYouGo``/``Subscription``/``TopUp``, and the application layer
  stored it in ``String(13)``; we assume ``FREE``, ``PAY_AS_YOU_GO``, ``SUBSCRIPTION``.
  ``users.status`` is ``ACTIVE``, ``PAUSED``, ``BLOCKED`` (``String(7)`` fits exactly). Project
  enums are as listed in the source schema.
- Defaults: ``currentPlan`` FREE, ``users.status`` ACTIVE, ``sandbox_state`` NONE,
  ``Project.status`` ACTIVE (as the application layer had them); ``Project.type`` has no
  default: a project's kind is chosen when it is created.
- ``users."walletAddress"`` is unique (``users_walletAddress_key``, Prisma's naming): a wallet
  identifies one account. ``Project."userId"`` references ``users.id`` ``ON DELETE CASCADE``.
- ``ProjectFile``: ``id``, ``project_id`` (-> ``Project.id``, cascade), ``path`` (``text
  COLLATE "C"``: byte order, so listings sort like a file system and a prefix ``LIKE`` is served
  by the btree index), ``content`` (text), ``size_bytes`` (UTF-8 length), ``created_at``,
  ``updated_at`` and ``deleted_at`` (soft delete; ``NULL`` = live). ``(project_id, path)`` is
  unique, soft-deleted rows included: saving over a deleted file revives it.
- ``ProjectThought``: ``id``, ``project_id`` (cascade), ``kind`` (``varchar(64)``, an open set of
  lower-case names validated by the service, not an enum: agents add kinds without a migration),
  ``content`` (text), ``metadata`` (jsonb), ``thread_id`` (the LangGraph thread that produced it,
  optional) and ``created_at``.
- Indexes serve every list query of the repositories: ``Project ("userId", created_at, id)``,
  ``ProjectFile (project_id, path)`` (the unique index), ``ProjectThought (project_id,
  created_at, id)`` and ``(project_id, kind, created_at, id)``.

Additions of this package (migration 0002, invisible to the platform's code)
--------------------------------------------------------------------------
- ``ProjectFile.encoding`` (``'utf-8'`` or ``'base64'``, default ``'utf-8'``): binary files, as
  deepagents backends carry them, are stored as base64 text and say so. Adding a column with a
  constant default rewrites nothing (PostgreSQL 11+), and code that names its columns, as
  Prisma's does, never sees it.
- ``ProjectFile_content_trgm_idx``: a GIN ``pg_trgm`` index on ``content``, so a literal grep
  (``content LIKE '%text%'``) reads only the files that can hold the text.
- ``ProjectThought_content_fts_idx``: a GIN index on the expression
  ``to_tsvector('english', content)`` for full-text recall. An expression index rather than a
  generated column: the audited table keeps its columns, and nothing is stored twice. A search
  in another text-search configuration is still correct, only without this index.

Relationships load with ``lazy="raise"``: in async code an implicit lazy load is a bug, so it
fails loudly instead of doing hidden I/O.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Enum as SAEnum
from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "Plan",
    "Project",
    "ProjectFile",
    "ProjectStatus",
    "ProjectThought",
    "ProjectType",
    "SandboxState",
    "UTCDateTime",
    "User",
    "UserStatus",
    "new_id",
    "truncate",
    "utcnow",
]

UTC = timezone.utc

# What the server stores when a writer leaves a timestamp out: UTC wall-clock time, whatever
# the session's TimeZone. Spelled as PostgreSQL prints it back, so schema comparison is exact.
UTC_NOW = text("timezone('utc'::text, now())")


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def truncate(value: datetime, precision: int) -> datetime:
    """`value` cut to `precision` fractional-second digits (what a ``timestamp(p)`` keeps)."""
    step = 10 ** (6 - precision)
    return value.replace(microsecond=value.microsecond // step * step)


def new_id() -> str:
    """Return a new random row id (UUID4 text, as the existing rows use)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, UTC wall-clock ``timestamp(p)`` in the database.

    Args:
        precision: fractional-second digits of the column (3 or 6 in this schema); values are
            truncated to it on the way in, so what is read back equals what was written.
    """

    impl = TIMESTAMP
    cache_ok = True

    def __init__(self, precision: int = 6) -> None:
        super().__init__(timezone=False, precision=precision)
        self.precision = precision

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "naive datetime: app_data stores timezone-aware UTC datetimes only "
                "(use datetime.now(timezone.utc))"
            )
        return truncate(value.astimezone(UTC), self.precision).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Plan(str, enum.Enum):
    """A user's billing plan (``"Plan"`` enum type)."""

    FREE = "FREE"
    PAY_AS_YOU_GO = "PAY_AS_YOU_GO"
    SUBSCRIPTION = "SUBSCRIPTION"


class UserStatus(str, enum.Enum):
    """Whether a user may use the platform (``"UserStatus"`` enum type)."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    BLOCKED = "BLOCKED"


class SandboxState(str, enum.Enum):
    """State of a project's code sandbox (``"SandboxState"`` enum type)."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    KILLED = "KILLED"
    NONE = "NONE"


class ProjectStatus(str, enum.Enum):
    """Lifecycle of a project (``"ProjectStatus"`` enum type)."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


class ProjectType(str, enum.Enum):
    """What a project builds (``"ProjectType"`` enum type)."""

    GAME = "GAME"
    FULLSTACK = "FULLSTACK"
    LANDING_PAGE = "LANDING_PAGE"
    CODE_ANALYSIS = "CODE_ANALYSIS"


def _labels(cls: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in cls]


def pg_enum(cls: type[enum.Enum], name: str) -> SAEnum:
    """A native PostgreSQL enum type for `cls`, labelled with the members' values."""
    return SAEnum(cls, name=name, values_callable=_labels, validate_strings=True)


PLAN = pg_enum(Plan, "Plan")
USER_STATUS = pg_enum(UserStatus, "UserStatus")
SANDBOX_STATE = pg_enum(SandboxState, "SandboxState")
PROJECT_STATUS = pg_enum(ProjectStatus, "ProjectStatus")
PROJECT_TYPE = pg_enum(ProjectType, "ProjectType")
ENUM_TYPES: tuple[SAEnum, ...] = (PLAN, USER_STATUS, SANDBOX_STATE, PROJECT_STATUS, PROJECT_TYPE)


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base of the application tables (the ones app_data's migrations own)."""

    metadata = MetaData()


class User(Base):
    """A platform account (``users``)."""

    __tablename__ = "users"
    __table_args__ = (Index("users_walletAddress_key", "walletAddress", unique=True),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=new_id)
    wallet_address: Mapped[str] = mapped_column("walletAddress", Text)
    created_at: Mapped[datetime] = mapped_column(
        "createdAt", UTCDateTime(3), default=utcnow, server_default=UTC_NOW
    )
    updated_at: Mapped[datetime] = mapped_column(
        "updatedAt", UTCDateTime(3), default=utcnow, server_default=UTC_NOW
    )
    current_plan: Mapped[Plan] = mapped_column(
        "currentPlan", PLAN, default=Plan.FREE, server_default=Plan.FREE.value
    )
    status: Mapped[UserStatus] = mapped_column(
        USER_STATUS, default=UserStatus.ACTIVE, server_default=UserStatus.ACTIVE.value
    )
    username: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[str | None] = mapped_column("customerId", Text)
    current_payment_method_id: Mapped[str | None] = mapped_column("currentPaymentMethodId", Text)
    github_token: Mapped[str | None] = mapped_column("githubToken", Text)
    github_username: Mapped[str | None] = mapped_column("githubUsername", Text)

    projects: Mapped[list[Project]] = relationship(
        back_populates="user", lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:  # never the GitHub token
        return f"User(id={self.id!r}, wallet_address={self.wallet_address!r})"


class Project(Base):
    """A user's project (``"Project"``)."""

    __tablename__ = "Project"
    __table_args__ = (Index("Project_userId_created_at_id_idx", "userId", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        "userId",
        String,
        ForeignKey("users.id", name="Project_userId_fkey", ondelete="CASCADE", onupdate="CASCADE"),
    )
    name: Mapped[str] = mapped_column(String(255))
    sandbox_state: Mapped[SandboxState] = mapped_column(
        SANDBOX_STATE, default=SandboxState.NONE, server_default=SandboxState.NONE.value
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(6), default=utcnow, server_default=UTC_NOW
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(6), default=utcnow, server_default=UTC_NOW
    )
    status: Mapped[ProjectStatus] = mapped_column(
        PROJECT_STATUS, default=ProjectStatus.ACTIVE, server_default=ProjectStatus.ACTIVE.value
    )
    last_active: Mapped[datetime] = mapped_column(
        UTCDateTime(6), default=utcnow, server_default=UTC_NOW
    )
    type: Mapped[ProjectType] = mapped_column(PROJECT_TYPE)
    description: Mapped[str | None] = mapped_column(Text)
    active_sandbox_id: Mapped[str | None] = mapped_column(String)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(6))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)

    user: Mapped[User] = relationship(back_populates="projects", lazy="raise")
    files: Mapped[list[ProjectFile]] = relationship(
        back_populates="project", lazy="raise", passive_deletes=True
    )
    thoughts: Mapped[list[ProjectThought]] = relationship(
        back_populates="project", lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Project(id={self.id!r}, user_id={self.user_id!r}, name={self.name!r})"


class ProjectFile(Base):
    """A file of a project (``"ProjectFile"``); soft-deleted while `deleted_at` is set."""

    __tablename__ = "ProjectFile"
    __table_args__ = (
        Index("ProjectFile_project_id_path_key", "project_id", "path", unique=True),
        Index(
            "ProjectFile_content_trgm_idx",
            "content",
            postgresql_using="gin",
            postgresql_ops={"content": "gin_trgm_ops"},
            postgresql_with={"fastupdate": "off"},
        ),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(
        String,
        ForeignKey(
            "Project.id", name="ProjectFile_project_id_fkey", ondelete="CASCADE", onupdate="CASCADE"
        ),
    )
    path: Mapped[str] = mapped_column(Text(collation="C"))
    content: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(Text, default="utf-8", server_default="utf-8")
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(6), default=utcnow, server_default=UTC_NOW
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(6), default=utcnow, server_default=UTC_NOW
    )
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(6))

    project: Mapped[Project] = relationship(back_populates="files", lazy="raise")

    def __repr__(self) -> str:
        return f"ProjectFile(project_id={self.project_id!r}, path={self.path!r})"


class ProjectThought(Base):
    """A note an agent keeps about a project (``"ProjectThought"``): plans, decisions, ..."""

    __tablename__ = "ProjectThought"
    __table_args__ = (
        Index("ProjectThought_project_id_created_at_id_idx", "project_id", "created_at", "id"),
        Index(
            "ProjectThought_project_id_kind_created_at_id_idx",
            "project_id",
            "kind",
            "created_at",
            "id",
        ),
        Index(
            "ProjectThought_content_fts_idx",
            text("to_tsvector('english'::regconfig, content)"),
            postgresql_using="gin",
        ),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(
        String,
        ForeignKey(
            "Project.id",
            name="ProjectThought_project_id_fkey",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
    )
    kind: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    thread_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(6), default=utcnow, server_default=UTC_NOW
    )

    project: Mapped[Project] = relationship(back_populates="thoughts", lazy="raise")

    def __repr__(self) -> str:
        return f"ProjectThought(id={self.id!r}, project_id={self.project_id!r}, kind={self.kind!r})"
