"""The parts every statement may use: the saver's tables, named for one schema.

A statement in this package's `.sql` files names tables as ``{checkpoints}``, ``{blobs}``,
``{writes}``, ``{migrations}`` and ``{own_migrations}``; `compose` and `render` fill them in
as quoted identifiers, schema-qualified when the saver has a schema, so values are only ever
parameters and identifiers only ever quoted identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from psycopg import sql

from checkpoint_pg._runtime.sqlfile import SqlFile, load

__all__ = ["TABLES", "compose", "load_file", "render", "table_parts"]

# Part name -> table name. The table names are the official package's.
TABLES: Mapping[str, str] = MappingProxyType(
    {
        "checkpoints": "checkpoints",
        "blobs": "checkpoint_blobs",
        "writes": "checkpoint_writes",
        "migrations": "checkpoint_migrations",
        "own_migrations": "checkpoint_pg_migrations",
    }
)


def load_file(filename: str) -> SqlFile:
    """One of the `.sql` files of this package."""
    return load("checkpoint_pg._sql", filename)


@cache
def table_parts(schema: str | None) -> Mapping[str, sql.Composable]:
    """The table parts for `schema` (None: unqualified names, found on the search_path)."""

    def name(table: str) -> sql.Identifier:
        return sql.Identifier(table) if schema is None else sql.Identifier(schema, table)

    parts: dict[str, sql.Composable] = {key: name(table) for key, table in TABLES.items()}
    parts["schema"] = sql.Identifier(schema) if schema else sql.SQL("")
    # The same names as string literals, for statements that build SQL on the server.
    for key in ("checkpoints", "blobs", "writes"):
        parts[f"{key}_text"] = sql.Literal(parts[key].as_string(None))
    return MappingProxyType(parts)


def compose(file: SqlFile, name: str, schema: str | None, **parts: sql.Composable) -> sql.Composed:
    """Statement (or fragment) `name` of `file` for `schema`, for use as another's part."""
    return file[name].compose(**table_parts(schema), **parts)


def render(file: SqlFile, name: str, schema: str | None, **parts: sql.Composable) -> str:
    """Statement `name` of `file` for `schema`, as the text the savers prepare and run."""
    return compose(file, name, schema, **parts).as_string(None)
