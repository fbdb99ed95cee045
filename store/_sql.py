"""The store's SQL files, and the schema-qualified names their ``{parts}`` take.

Statements live in ``migrations.sql`` and ``queries.sql`` beside this module (the format:
`checkpoint_pg._runtime.sqlfile`). Values are always parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from psycopg import sql

from checkpoint_pg._runtime.sqlfile import SqlFile, Statement, load


def migrations_file() -> SqlFile:
    return load("store", "migrations.sql")


def queries_file() -> SqlFile:
    return load("store", "queries.sql")


def query(name: str) -> Statement:
    """A statement of ``queries.sql``."""
    return queries_file()[name]


# The migration lists, numbered by position as the official store numbers its own (the
# doctor compares the recorded versions with their lengths).
OFFICIAL_NAMES = ("store_table", "store_prefix_index", "store_ttl_columns", "store_expiry_index")
VECTOR_NAMES = ("vector_extension", "vector_table", "vector_index")
OWN_NAMES = (
    "value_index",
    "number_function_v1",
    "ttl_exact_minutes_column",
    "number_function_in_range",
    "number_function_inline",
    "ttl_exact_at_column",
    "number_function_full",
    "number_function_short",
)
OFFICIAL_MIGRATIONS: tuple[Statement, ...] = tuple(migrations_file()[n] for n in OFFICIAL_NAMES)
OWN_MIGRATIONS: tuple[Statement, ...] = tuple(migrations_file()[n] for n in OWN_NAMES)


@dataclass(frozen=True, eq=False)
class StoreNames:
    """The store's objects in one schema, as identifiers ready to compose (one instance per
    schema, see `names_for`: hashed by identity, a cache key)."""

    schema: sql.Composable
    store: sql.Identifier
    vectors: sql.Identifier
    number: sql.Identifier
    number_full: sql.Identifier
    migrations: sql.Identifier
    vector_migrations: sql.Identifier
    own_migrations: sql.Identifier

    def parts(self) -> dict[str, sql.Composable]:
        """The names as the ``{parts}`` of the SQL files."""
        return {
            "schema": self.schema,
            "store": self.store,
            "vectors": self.vectors,
            "number": self.number,
            "number_full": self.number_full,
        }


@cache
def names_for(schema: str | None) -> StoreNames:
    """The store's object names for `schema` (None: the search_path)."""

    def name(table: str) -> sql.Identifier:
        return sql.Identifier(schema, table) if schema else sql.Identifier(table)

    return StoreNames(
        schema=sql.Identifier(schema) if schema else sql.SQL(""),
        store=name("store"),
        vectors=name("store_vectors"),
        number=name("store_jsonb_number"),
        number_full=name("store_jsonb_number_full"),
        migrations=name("store_migrations"),
        vector_migrations=name("vector_migrations"),
        own_migrations=name("store_pg_migrations"),
    )


def number_case() -> sql.Composable:
    """The number function's full CASE, shared by two migrations (``{number_case}``)."""
    return sql.SQL(migrations_file()["number_case"].text)


def number_body(schema: str) -> sql.Composable:
    """The short number function's body, naming the full one in `schema` (quoted as an
    identifier, then the whole body as a string literal: no name can break out of it)."""
    full = sql.Identifier(schema, "store_jsonb_number_full")
    return sql.Literal(migrations_file().render("number_short_body", number_full=full))


def render_migration(statement: Statement, schema: str | None, **extra: sql.Composable) -> str:
    """A migration's text for `schema`, as executed."""
    return statement.render(**{**names_for(schema).parts(), **extra})


# Up to this many rows a statement takes its rows as VALUES rows, beyond it as arrays: the
# savers' bound (checkpoint_pg._sql), held here so the store does not import the savers' SQL
# module while that one changes.
MAX_VALUES_ROWS = 8
