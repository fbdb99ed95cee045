"""The store's SQL: official DDL (same tables, same migration numbering) and statement pieces.

Templates name tables as ``{store}``, ``{vectors}``, ``{migrations}``, ``{vector_migrations}``,
``{own_migrations}`` and the helper function as ``{number}``; `render` qualifies them with the
store's schema through `psycopg.sql`. Values are always parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from psycopg import sql

# The official store's migrations, numbered as it numbers them (v = index).
OFFICIAL_MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS {store} (
        prefix text NOT NULL,
        key text NOT NULL,
        value jsonb NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (prefix, key)
    )""",
    "CREATE INDEX IF NOT EXISTS store_prefix_idx ON {store} USING btree (prefix text_pattern_ops)",
    """ALTER TABLE {store}
        ADD COLUMN IF NOT EXISTS expires_at TIMESTAMP WITH TIME ZONE,
        ADD COLUMN IF NOT EXISTS ttl_minutes INT""",
    "CREATE INDEX IF NOT EXISTS idx_store_expires_at ON {store} (expires_at)"
    " WHERE expires_at IS NOT NULL",
)

# The official vector migrations: the extension, the table, then the ANN index (skipped, and
# not recorded, for a flat index, exactly as the official store does).
VECTOR_EXTENSION = "CREATE EXTENSION IF NOT EXISTS vector"
VECTOR_TABLE = """CREATE TABLE IF NOT EXISTS {vectors} (
        prefix text NOT NULL,
        key text NOT NULL,
        field_name text NOT NULL,
        embedding {vector_type}({dims}),
        created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (prefix, key, field_name),
        FOREIGN KEY (prefix, key) REFERENCES {store} (prefix, key) ON DELETE CASCADE
    )"""
VECTOR_INDEX = (
    "CREATE INDEX IF NOT EXISTS store_vectors_embedding_idx ON {vectors}"
    " USING {index_kind} (embedding {opclass}){index_params}"
)

# A JSON value `v` as a number, every case (see OWN_MIGRATIONS): the body of the inlined
# number function of migration 4 and of the full function of migration 6.
_NUMBER_CASE = r"""CASE jsonb_typeof(v)
            WHEN 'number' THEN CASE
                WHEN length(v #>> '{{}}') < 300 AND strpos(v #>> '{{}}', 'e') = 0
                     AND strpos(v #>> '{{}}', 'E') = 0 THEN (v #>> '{{}}')::double precision
                WHEN abs((v #>> '{{}}')::numeric) > 1.7976931348623157e308 THEN NULL
                WHEN abs((v #>> '{{}}')::numeric) < 5e-324 THEN 0.0
                ELSE (v #>> '{{}}')::numeric::double precision END
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1.0 ELSE 0.0 END
            WHEN 'string' THEN CASE
                WHEN length(v #>> '{{}}') > 1000
                     OR (v #>> '{{}}') !~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d{{1,4}})?\s*$'
                THEN NULL
                WHEN abs((v #>> '{{}}')::numeric) > 1.7976931348623157e308 THEN
                    CASE WHEN (v #>> '{{}}')::numeric > 0 THEN 'Infinity'::float8
                         ELSE '-Infinity'::float8 END
                WHEN abs((v #>> '{{}}')::numeric) < 5e-324 THEN 0.0
                ELSE (v #>> '{{}}')::numeric::double precision END
        END"""

# This project's additions, recorded in `store_pg_migrations`; the official store ignores them.
OWN_MIGRATIONS: tuple[str, ...] = (
    # Equality and nested-object filters become containment, answered by this index.
    "CREATE INDEX IF NOT EXISTS store_value_idx ON {store} USING gin (value jsonb_path_ops)",
    # A JSON value as a number the way LangGraph's in-memory store compares them (numbers,
    # booleans as 0/1, numeric strings), NULL otherwise. IMMUTABLE, so range filters on a
    # field can be served by an expression index on it.
    r"""CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE jsonb_typeof(v)
            WHEN 'number' THEN (v #>> '{{}}')::double precision
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1.0 ELSE 0.0 END
            WHEN 'string' THEN CASE
                WHEN (v #>> '{{}}') ~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$'
                THEN (v #>> '{{}}')::double precision END
        END $$""",
    # The exact TTL in minutes (the official INT column rounds 0.5 minutes away); read first.
    "ALTER TABLE {store} ADD COLUMN IF NOT EXISTS ttl_exact_minutes DOUBLE PRECISION",
    # The same function without errors for numbers beyond a double's range (JSONB keeps 1e400
    # exactly; the cast failed the whole search, and any put to a field with a range index).
    # As Python's float() has it: a numeric string beyond the range is an infinity, one below
    # the smallest double is 0; a JSON number beyond the range (an int to Python) cannot be
    # compared, so it matches nothing.
    r"""CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN n IS NULL THEN NULL
            WHEN abs(n) > 1.7976931348623157e308 THEN CASE WHEN is_text THEN
                CASE WHEN n > 0 THEN 'Infinity'::float8 ELSE '-Infinity'::float8 END END
            WHEN abs(n) < 5e-324 THEN 0.0
            ELSE n::double precision END
        FROM (SELECT CASE jsonb_typeof(v)
            WHEN 'number' THEN (v #>> '{{}}')::numeric
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1 ELSE 0 END
            WHEN 'string' THEN CASE
                WHEN length(v #>> '{{}}') <= 1000
                     AND (v #>> '{{}}') ~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d{{1,4}})?\s*$'
                THEN (v #>> '{{}}')::numeric END
        END AS n, jsonb_typeof(v) = 'string' AS is_text) AS parsed $$""",
    # The same answers as one expression: a SQL function PostgreSQL can inline (no FROM), so an
    # index on it (range_index_fields) and range filters evaluate it in ~1 us instead of
    # running the function executor (~12 us per row: puts to a range-indexed store paid it).
    # Plain JSON numbers (no exponent, under 300 characters) cannot leave a double's range
    # and take the direct cast; the others go through numeric as above.
    r"""CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT """
    + _NUMBER_CASE
    + " $$",
    # Which write set ttl_exact_minutes: the updated_at of that write. The official store
    # overwrites an item without touching ttl_exact_minutes; its new updated_at then tells
    # that the exact value is stale (see REFRESHED_EXPIRY).
    "ALTER TABLE {store} ADD COLUMN IF NOT EXISTS ttl_exact_at TIMESTAMPTZ",
    # The number function's every case (as above) in a function PostgreSQL does not inline,
    # for the values the short form below hands over: strings, and numbers whose text is
    # 300 characters or more (JSONB prints numbers without exponents, so 1e400 is 401 digits).
    r"""CREATE OR REPLACE FUNCTION {number_full}(v jsonb) RETURNS double precision
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
        BEGIN
        RETURN """
    + _NUMBER_CASE
    + """;
        END $fn$""",
    # The same answers, with a short inlined expression: PostgreSQL compiles a range index's
    # expression for every INSERT statement, and the whole CASE above cost a single put ~31 us
    # there (this one ~18 us, a bare cast ~11 us). Plain numbers, the common case, stay inline
    # (~1 us a row; the JSONB number's text is what `#>> '{{}}'` gave); the rest call the
    # function above (a missing key never does: it is STRICT).
    # {number_body} calls the function above by its schema-qualified name (PostgreSQL 17+
    # runs CREATE INDEX, ANALYZE and autovacuum with a search_path of pg_catalog only); see
    # `number_body`.
    "CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision"
    " LANGUAGE sql IMMUTABLE PARALLEL SAFE AS {number_body}",
)


def _names(schema: str | None) -> dict[str, sql.Composable]:
    def name(table: str) -> sql.Composable:
        return sql.Identifier(schema, table) if schema else sql.Identifier(table)

    return {
        "store": name("store"),
        "vectors": name("store_vectors"),
        "migrations": name("store_migrations"),
        "vector_migrations": name("vector_migrations"),
        "own_migrations": name("store_pg_migrations"),
        "number": name("store_jsonb_number"),
        "number_full": name("store_jsonb_number_full"),
        "schema": sql.Identifier(schema) if schema else sql.SQL(""),
    }


def number_body(schema: str) -> sql.Composable:
    """The short number function's body, naming the full one in `schema` (quoted as an
    identifier, then the whole body as a string literal: no name can break out of it)."""
    full = sql.Identifier(schema, "store_jsonb_number_full").as_string(None)
    return sql.Literal(
        "SELECT CASE WHEN jsonb_typeof(v) = 'number' AND length(v::text) < 300"
        f" THEN v::double precision ELSE {full}(v) END"
    )


def render(template: str, schema: str | None, **extra: sql.Composable) -> str:
    """Render `template` for `schema` into plain SQL text."""
    return sql.SQL(template).format(**{**_names(schema), **extra}).as_string(None)


@dataclass(frozen=True)
class StoreNames:
    """Rendered, quoted names of the store's objects in one schema."""

    store: str
    vectors: str
    number: str
    migrations: str
    vector_migrations: str
    own_migrations: str


@cache
def names_for(schema: str | None) -> StoreNames:
    """The store's object names for `schema` (None: the search_path)."""
    return StoreNames(
        **{
            key: render("{" + key + "}", schema)
            for key in (
                "store",
                "vectors",
                "number",
                "migrations",
                "vector_migrations",
                "own_migrations",
            )
        }
    )


# How a refresh-on-read moves an item's expiry: by its exact TTL when known. The exact value
# counts only while it agrees with `ttl_minutes` (which this store writes as its ceiling): an
# official store's later put changes `ttl_minutes` and leaves the exact value stale.
# The exact TTL counts only if the write that set it is still the item's last write (rows
# written before ttl_exact_at existed: if it still agrees with the official column).
REFRESHED_EXPIRY = """now() + make_interval(secs => 60 * CASE
        WHEN s.ttl_exact_minutes IS NOT NULL AND (s.ttl_exact_at = s.updated_at
             OR (s.ttl_exact_at IS NULL AND ceil(s.ttl_exact_minutes) = s.ttl_minutes))
        THEN s.ttl_exact_minutes ELSE s.ttl_minutes END)"""
