"""Alembic environment: runs on the connection `app_data.migrations` hands over.

Run through the ``alembic`` command instead (no connection attribute), it connects with the
settings from the environment and takes the same advisory lock.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from app_data.migrations import VERSION_TABLE, configure_context, lock
from app_data.models import Base


def run_on(connection: Connection) -> None:
    """Run the migrations on `connection` (inside the caller's transaction if it has one)."""
    context.configure(**configure_context(connection))
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    """Connect with the environment's settings, lock, migrate, disconnect."""
    from app_data.session import create_engine, get_settings

    engine = create_engine(get_settings().model_copy(update={"pooler": True}))
    try:
        async with engine.begin() as conn:
            await lock(conn)
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        dialect_name="postgresql",
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    bound = context.config.attributes.get("connection")
    if bound is None:
        asyncio.run(run_from_settings())
    else:
        run_on(bound)
