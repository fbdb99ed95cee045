"""Alembic migrations of the application tables, shipped inside the package and run from code.

    await app_data.migrations.upgrade(url_or_database)      # to head, on every start
    await app_data.migrations.current(url_or_database)      # the applied revision, or None

A run is one transaction holding an advisory lock (per database and schema), so many processes
may call `upgrade` at start-up at once: one migrates, the others wait and find nothing to do.
Tables land in the first schema of the connection's ``search_path``.

Revisions are recorded in ``app_data_alembic_version``, not alembic's default
``alembic_version``, so they never collide with another alembic project sharing the database.

Only `app_data.models.Base.metadata` is a migration target. The LangGraph tables belong to the
savers and the store (their own ``setup()``), and every other table in the database (the
platform's billing, deployments, ...; see ``docs/audit.md``) to the platform's own
migrations: autogenerate and `pending_changes` ignore them instead of proposing to drop them.

A production database whose application tables already exist (created by the platform's
Prisma migrations) is adopted with ``stamp(url, "0001")`` instead of `upgrade`.

Command line: ``python -m app_data.migrations upgrade|downgrade REV|stamp REV|current|check``
(the URL comes from ``$APP_DATA_DATABASE_URL``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app_data.errors import MigrationError

__all__ = [
    "VERSION_TABLE",
    "alembic_config",
    "current",
    "downgrade",
    "include_object",
    "pending_changes",
    "stamp",
    "upgrade",
]

VERSION_TABLE = "app_data_alembic_version"
_HERE = Path(__file__).resolve().parent
_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended('app_data.migrations:' || current_schema(), 0))"
)

T = TypeVar("T")
Target = Any  # str (URL) | app_data.session.Database | AsyncEngine


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic `Config` for the packaged migrations, optionally bound to `connection`."""
    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object | None
) -> bool:
    """Compare only what the application metadata declares: other owners' tables are ignored."""
    return not (type_ == "table" and reflected and compare_to is None)


def compare_type(
    context: MigrationContext,
    inspected_column: object,
    metadata_column: object,
    inspected_type: Any,
    metadata_type: Any,
) -> bool | None:
    """Alembic's type comparison, plus collations (``ProjectFile.path`` is ``COLLATE "C"``)."""
    inspected = getattr(inspected_type, "collation", None)
    declared = getattr(getattr(metadata_type, "impl", metadata_type), "collation", None)
    if inspected != declared and (inspected or declared):
        return True
    return None  # defer to alembic's own comparison


def configure_context(connection: Connection, **extra: Any) -> dict[str, Any]:
    """The `context.configure` options every run uses (also by ``env.py``)."""
    from app_data.models import Base

    return {
        "connection": connection,
        "target_metadata": Base.metadata,
        "version_table": VERSION_TABLE,
        "include_object": include_object,
        "compare_type": compare_type,
        "compare_server_default": True,
        **extra,
    }


async def lock(connection: AsyncConnection) -> None:
    """Take the migration lock for this database and schema until the transaction ends."""
    await connection.execute(text(_LOCK))


def _engine_for(target: Target) -> tuple[AsyncEngine, bool]:
    from app_data.session import Database, create_engine, load_settings

    if isinstance(target, Database):
        return target.engine, False
    if isinstance(target, AsyncEngine):
        return target, False
    if isinstance(target, str):
        return create_engine(load_settings(database_url=target, pooler=True)), True
    raise TypeError(f"expected a URL, a Database or an AsyncEngine, not {type(target).__name__}")


async def _run(target: Target, what: str, fn: Callable[[Connection], T]) -> T:
    engine, owned = _engine_for(target)
    try:
        async with engine.begin() as conn:
            await lock(conn)
            return await conn.run_sync(fn)
    except DBAPIError as exc:
        from app_data.translate import describe

        raise MigrationError(f"{what} failed: {describe(exc)}") from exc
    finally:
        if owned:
            await engine.dispose()


async def upgrade(target: Target, revision: str = "head") -> None:
    """Apply every migration up to `revision` (idempotent; safe from many processes at once).

    Raises:
        MigrationError: a migration failed; the transaction was rolled back, nothing applied.
    """
    await _run(
        target, f"upgrade to {revision}", lambda c: command.upgrade(alembic_config(c), revision)
    )


async def downgrade(target: Target, revision: str) -> None:
    """Revert migrations down to `revision` (``"base"`` drops the application tables and types)."""
    await _run(
        target, f"downgrade to {revision}", lambda c: command.downgrade(alembic_config(c), revision)
    )


async def stamp(target: Target, revision: str = "head") -> None:
    """Record `revision` as applied without running it (adopting an existing schema)."""
    await _run(target, f"stamp {revision}", lambda c: command.stamp(alembic_config(c), revision))


async def current(target: Target) -> str | None:
    """The revision the database is at, None before the first migration."""

    def read(connection: Connection) -> str | None:
        ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()

    return await _run(target, "reading the current revision", read)


async def pending_changes(target: Target) -> list[Any]:
    """Differences between the models and the database (alembic's comparison; [] = in sync)."""

    def diff(connection: Connection) -> list[Any]:
        options = configure_context(connection)
        options.pop("connection")
        metadata = options.pop("target_metadata")
        ctx = MigrationContext.configure(connection, opts=options)
        return list(compare_metadata(ctx, metadata))

    return await _run(target, "comparing the schema", diff)
