"""The migrations and the setup statements, from schema.sql (run by checkpoint_pg/_schema.py)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from psycopg import sql

from checkpoint_pg._runtime.sqlfile import SqlFile, Statement
from checkpoint_pg._sql.tables import TABLES, compose, load_file, render, table_parts

__all__ = [
    "COLUMN_COMPRESSION",
    "COMPRESSION_CODES",
    "OFFICIAL_MIGRATIONS",
    "OWN_MIGRATIONS",
    "PARTITIONED_TABLES",
    "PARTITION_KEY",
    "SCHEMA",
    "TABLE_LAYOUT",
    "compression_params",
    "migration_sql",
    "partition_sql",
    "partitioned_table_sql",
    "qualified_table",
    "set_compression_sql",
    "table_name",
]

SCHEMA = load_file("schema.sql")


def _numbered(file: SqlFile, prefix: str) -> tuple[Statement, ...]:
    """The statements ``prefix_0``, ``prefix_1``… of `file`, up to the first missing number."""
    found: list[Statement] = []
    while f"{prefix}_{len(found)}" in file.statements:
        found.append(file[f"{prefix}_{len(found)}"])
    return tuple(found)


# The official package's migrations (their numbering) and this project's own, in order.
OFFICIAL_MIGRATIONS = _numbered(SCHEMA, "official")
OWN_MIGRATIONS = _numbered(SCHEMA, "own")

# Official migration version -> the table part of the table it creates, for partitioning.
PARTITIONED_TABLES: Mapping[int, str] = MappingProxyType(
    {1: "checkpoints", 2: "blobs", 3: "writes"}
)
# As the server reports it (pg_get_partkeydef) for a table partitioned as setup does it.
PARTITION_KEY = "HASH (thread_id)"

TABLE_LAYOUT = SCHEMA.render("table_layout")
COLUMN_COMPRESSION = SCHEMA.render("column_compression")
# `compression=` method -> pg_attribute.attcompression once the method is set.
COMPRESSION_CODES: Mapping[str, str] = MappingProxyType({"pglz": "p", "lz4": "l"})


def compression_params(schema: str | None) -> dict[str, str]:
    """The parameters of COLUMN_COMPRESSION: the quoted names of the three tables."""
    return {part: qualified_table(v, schema) for v, part in PARTITIONED_TABLES.items()}


def set_compression_sql(schema_name: str, table: str, column: str, method: str) -> str:
    """ALTER one column of one table (or partition) to TOAST compression `method`."""
    if method not in COMPRESSION_CODES:
        raise ValueError(f"unknown compression method {method!r}")
    return (
        SCHEMA["set_column_compression"]
        .compose(
            table=sql.Identifier(schema_name, table),
            column=sql.Identifier(column),
            method=sql.SQL(method),
        )
        .as_string(None)
    )


def migration_sql(version: int, schema: str | None, *, own: bool = False) -> str:
    """Migration `version` (official, or this project's own) for `schema`."""
    return render(SCHEMA, f"{'own' if own else 'official'}_{version}", schema)


def partitioned_table_sql(version: int, schema: str | None) -> str:
    """Official migration `version` (1-3) creating its table partitioned by hash of thread_id."""
    return render(
        SCHEMA,
        "partitioned_table",
        schema,
        create_table=compose(SCHEMA, f"official_{version}", schema),
        partition_key=sql.SQL(PARTITION_KEY),
    )


def partition_sql(version: int, schema: str | None, modulus: int, remainder: int) -> str:
    """The partition `remainder` of `modulus` of the table official migration `version` makes."""
    name = f"{table_name(version)}_p{remainder}"
    return render(
        SCHEMA,
        "partition",
        schema,
        partition=sql.Identifier(schema, name) if schema else sql.Identifier(name),
        parent=table_parts(schema)[PARTITIONED_TABLES[version]],
        modulus=sql.Literal(modulus),
        remainder=sql.Literal(remainder),
    )


def table_name(version: int) -> str:
    """The bare name of the table official migration `version` (1-3) creates."""
    return TABLES[PARTITIONED_TABLES[version]]


def qualified_table(version: int, schema: str | None) -> str:
    """The quoted, schema-qualified name of the table official migration `version` creates."""
    return table_parts(schema)[PARTITIONED_TABLES[version]].as_string(None)
