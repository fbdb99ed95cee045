"""Create or migrate the checkpoint tables: one transaction, serialised by an advisory lock.

Many processes may call `setup()` at once on an empty database; the transaction-scoped
advisory lock makes the second caller wait for the first and then find nothing to do.
All migrations of one call commit together or not at all.
"""

from __future__ import annotations

from checkpoint_pg._protocol import Query, Steps
from checkpoint_pg._sql import OFFICIAL_MIGRATIONS, OWN_MIGRATIONS, Statements, migration_sql

LATEST_VERSION = len(OFFICIAL_MIGRATIONS) - 1
LATEST_OWN_VERSION = len(OWN_MIGRATIONS) - 1


def lock_key(schema: str | None) -> str:
    """The advisory lock name for one schema's setup (locks are per database)."""
    return f"checkpoint_pg.setup:{schema or ''}"


def migrate(sql: Statements, schema: str | None) -> Steps[tuple[int, int]]:
    """Apply the migrations the database lacks; return the (official, own) versions reached.

    The official list is applied exactly as the official saver would, numbered as it numbers
    them; this project's additions follow, recorded in its own table.
    """
    yield Query(sql.xact_lock_migrations, (lock_key(schema),))
    if schema is not None:
        yield Query(sql.create_schema)
    yield Query(migration_sql(0, schema))
    rows = yield Query(sql.latest_migration, fetch=True)
    current = rows[0][0] if rows and rows[0][0] is not None else -1
    for version in range(current + 1, LATEST_VERSION + 1):
        yield Query(migration_sql(version, schema))
        yield Query(sql.record_migration, (version,))
    yield Query(migration_sql(0, schema, own=True))
    rows = yield Query(sql.latest_own_migration, fetch=True)
    own = rows[0][0] if rows and rows[0][0] is not None else -1
    for version in range(own + 1, LATEST_OWN_VERSION + 1):
        yield Query(migration_sql(version, schema, own=True))
        yield Query(sql.record_own_migration, (version,))
    return max(current, LATEST_VERSION), max(own, LATEST_OWN_VERSION)
