"""Create or migrate the checkpoint tables: one transaction, serialised by an advisory lock.

Many processes may call `setup()` at once on an empty database; the transaction-scoped
advisory lock makes the second caller wait for the first and then find nothing to do.
All migrations of one call commit together or not at all.
"""

from __future__ import annotations

import logging

from checkpoint_pg._runtime.citus import ShardedTable, distribute
from checkpoint_pg._runtime.protocol import Query, Steps
from checkpoint_pg._sql import (
    COLUMN_COMPRESSION,
    COMPRESSION_CODES,
    OFFICIAL_MIGRATIONS,
    OWN_MIGRATIONS,
    PARTITION_KEY,
    PARTITIONED_TABLES,
    TABLE_LAYOUT,
    Statements,
    compression_params,
    migration_sql,
    partition_sql,
    partitioned_table_sql,
    qualified_table,
    set_compression_sql,
    table_name,
    table_parts,
)
from checkpoint_pg.errors import InvalidConfigError, SchemaMismatchError

logger = logging.getLogger("checkpoint_pg")

LATEST_VERSION = len(OFFICIAL_MIGRATIONS) - 1
LATEST_OWN_VERSION = len(OWN_MIGRATIONS) - 1


def lock_key(schema: str | None) -> str:
    """The advisory lock name for one schema's setup (locks are per database)."""
    return f"checkpoint_pg.setup:{schema or ''}"


def migrate(
    sql: Statements,
    schema: str | None,
    partitions: int | None = None,
    compression: str | None = None,
    *,
    distributed: bool = False,
) -> Steps[tuple[int, int]]:
    """Apply the migrations the database lacks; return the (official, own) versions reached.

    The official list is applied exactly as the official saver would, numbered as it numbers
    them; this project's additions follow, recorded in its own table. With `partitions`, the
    checkpoint tables are first created hash-partitioned by thread_id (see `partition`). With
    `compression`, the value columns are then set to that TOAST compression method (see
    `set_compression`). With `distributed`, the tables are then sharded on Citus (see `shard`).
    """
    yield Query(sql.xact_lock_migrations, {"lock_key": lock_key(schema)})
    if schema is not None:
        yield Query(sql.create_schema)
    yield Query(migration_sql(0, schema))
    rows = yield Query(sql.latest_migration, fetch=True)
    current = rows[0][0] if rows and rows[0][0] is not None else -1
    if partitions is not None:
        yield from partition(schema, partitions)
    for version in range(current + 1, LATEST_VERSION + 1):
        yield Query(migration_sql(version, schema))
        yield Query(sql.record_migration, {"v": version})
    yield Query(migration_sql(0, schema, own=True))
    rows = yield Query(sql.latest_own_migration, fetch=True)
    own = rows[0][0] if rows and rows[0][0] is not None else -1
    for version in range(own + 1, LATEST_OWN_VERSION + 1):
        yield Query(migration_sql(version, schema, own=True))
        yield Query(sql.record_own_migration, {"v": version})
    if compression is not None:
        yield from set_compression(schema, compression)
    if distributed:
        yield from shard(schema)
    return max(current, LATEST_VERSION), max(own, LATEST_OWN_VERSION)


def shard(schema: str | None) -> Steps[None]:
    """Distribute the checkpoint tables on Citus by thread_id, co-located, so every row of a
    thread lives on one node and each per-thread statement runs on one shard; the migration
    tables become reference tables (a copy on every node). Already so: nothing changes."""
    parts = table_parts(schema)

    def name(part: str) -> str:
        return parts[part].as_string(None)

    checkpoints = name("checkpoints")
    sharded = [
        ShardedTable(checkpoints, "thread_id"),
        ShardedTable(name("blobs"), "thread_id", colocate=checkpoints),
        ShardedTable(name("writes"), "thread_id", colocate=checkpoints),
    ]
    changed = yield from distribute(sharded, [name("migrations"), name("own_migrations")])
    if changed:
        logger.info("distributed the checkpoint tables by thread_id on Citus")


def set_compression(schema: str | None, method: str) -> Steps[None]:
    """Set the value columns (blobs, writes, checkpoints; every partition too) to `method`.

    Only the columns set otherwise are altered, so a setup() that finds them right takes no
    table lock. It applies to values written from now on; stored values keep their method.
    """
    rows = yield Query(COLUMN_COMPRESSION, compression_params(schema), fetch=True)
    if any(current is None for *_, current in rows):
        raise InvalidConfigError(
            f"compression={method!r} needs PostgreSQL 14 or later (per-column TOAST compression)"
        )
    for schema_name, table, column, current in rows:
        if current != COMPRESSION_CODES[method]:
            yield Query(set_compression_sql(schema_name, table, column, method))


def partition(schema: str | None, partitions: int) -> Steps[None]:
    """Create the missing checkpoint tables hash-partitioned by thread_id, `partitions` each.

    Tables that exist are checked, never converted: unpartitioned ones (or partitioned by
    something else) raise `SchemaMismatchError` before anything changes; partitioned ones with
    another number of partitions are kept as they are, with a warning. The official migrations
    that follow find the tables and record the official versions as the official saver would.
    """
    versions = sorted(PARTITIONED_TABLES)
    names = [qualified_table(v, schema) for v in versions]
    rows = yield Query(TABLE_LAYOUT, {"names": names}, fetch=True)
    found = {name: (kind, key, count) for name, kind, key, count in rows}
    for version, name in zip(versions, names, strict=True):
        if name not in found:
            continue
        kind, key, count = found[name]
        if kind != "p" or key != PARTITION_KEY:
            layout = "not partitioned" if kind != "p" else f"partitioned by {key}"
            raise SchemaMismatchError(
                f"setup(partitions={partitions}) found table {name} {layout}: it is never "
                "converted in place. Move the data to tables partitioned by HASH (thread_id) "
                "yourself (see docs/scaling.md), or set up without partitions="
            )
        if count != partitions:
            logger.warning(
                "checkpoint table %s has %d hash partitions, not the %d asked for: kept as is",
                table_name(version),
                count,
                partitions,
            )
    missing = [v for v, name in zip(versions, names, strict=True) if name not in found]
    for version in missing:
        yield Query(partitioned_table_sql(version, schema))
        for remainder in range(partitions):
            yield Query(partition_sql(version, schema, partitions, remainder))
    if missing:
        logger.info(
            "created checkpoint tables %s hash-partitioned by thread_id, %d partitions each",
            ", ".join(table_name(v) for v in missing),
            partitions,
        )
