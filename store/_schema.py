"""Create or migrate the store's tables: one transaction, serialised by an advisory lock.

The official numbering is kept: `store_migrations` and `vector_migrations` get exactly the rows
the official store writes (the ANN index migration is skipped, unrecorded, for a flat index, as
there). This project's additions are recorded in `store_pg_migrations`.
"""

from __future__ import annotations

import hashlib

from psycopg import sql

from checkpoint_pg._protocol import Query, Steps
from store._index import VectorIndex
from store._sql import (
    OFFICIAL_MIGRATIONS,
    OWN_MIGRATIONS,
    VECTOR_EXTENSION,
    VECTOR_INDEX,
    VECTOR_TABLE,
    names_for,
    number_body,
    render,
)
from store.errors import InvalidValueError, VectorSupportMissingError


def _vector_migrations(schema: str | None, index: VectorIndex) -> list[str | None]:
    pieces = index.ddl_pieces()
    return [
        VECTOR_EXTENSION,
        render(VECTOR_TABLE, schema, **pieces),
        None if index.kind == "flat" else render(VECTOR_INDEX, schema, **pieces),
    ]


def _apply(table: str, migrations: list[str | None]) -> Steps[int]:
    """Apply `migrations` from the first one `table` does not record; record each."""
    yield Query(f"CREATE TABLE IF NOT EXISTS {table} (v INTEGER PRIMARY KEY)")
    rows = yield Query(f"SELECT max(v) FROM {table}", fetch=True)
    current = rows[0][0] if rows and rows[0][0] is not None else -1
    for version in range(current + 1, len(migrations)):
        statement = migrations[version]
        if statement is None:
            continue  # not applicable to this configuration, and not recorded
        yield Query(statement)
        yield Query(f"INSERT INTO {table} (v) VALUES (%s) ON CONFLICT DO NOTHING", (version,))
    return len(migrations) - 1


def range_index_ddl(schema: str | None, field: str) -> str:
    """An expression index serving range filters (`$gt`…) on the dotted `field` path."""
    parts = field.split(".")
    if not field or not all(parts) or any("\x00" in p for p in parts):
        raise InvalidValueError(f"range index field {field!r} must be a dotted path of names")
    path: sql.Composable = sql.SQL("value")
    for part in parts:
        path = sql.SQL("({} -> {})").format(path, sql.Literal(part))
    digest = hashlib.sha1(field.encode(), usedforsecurity=False).hexdigest()[:12]
    return (
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}({}))")
        .format(
            sql.Identifier(f"store_range_{digest}_idx"),
            sql.SQL(names_for(schema).store),
            sql.SQL(names_for(schema).number),
            path,
        )
        .as_string(None)
    )


def migrate(
    schema: str | None, index: VectorIndex | None, range_fields: tuple[str, ...] = ()
) -> Steps[None]:
    """Apply every migration the database lacks, and create the configured range indexes."""
    names = names_for(schema)
    yield Query(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"store.setup:{schema or ''}",)
    )
    if schema is not None:
        yield Query(render("CREATE SCHEMA IF NOT EXISTS {schema}", schema))
    yield from _apply(names.migrations, [render(m, schema) for m in OFFICIAL_MIGRATIONS])
    if index is not None:
        rows = yield Query(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'", fetch=True
        )
        if not rows:
            raise VectorSupportMissingError(
                "semantic search (index=...) needs the pgvector extension, which this "
                "PostgreSQL server does not have: install pgvector, or create the store "
                "without index="
            )
        yield from _apply(names.vector_migrations, list(_vector_migrations(schema, index)))
    if schema is None:
        rows = yield Query("SELECT current_schema()", fetch=True)
        home = str(rows[0][0])
    else:
        home = schema
    body = number_body(home)
    yield from _apply(
        names.own_migrations, [render(m, schema, number_body=body) for m in OWN_MIGRATIONS]
    )
    for field in range_fields:
        yield Query(range_index_ddl(schema, field))


__all__ = ["migrate"]
