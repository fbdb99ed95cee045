-- The store's schema: its migrations, each list in the order it is numbered (OFFICIAL, VECTOR
-- and OWN in store/_sql.py name the blocks), and the statements that apply them.
-- The migration tables record only version numbers; the official store and this one must
-- agree on what each number did, so a migration's text as executed stays byte for byte what
-- it was: keep the indentation and line breaks of the blocks below as they are.
-- Parts: {store}, {vectors}, {number}, {number_full}, {schema}, {table} are schema-qualified
-- names; the rest are described where they appear.

-- name: store_table
-- Official migration 0. The official store's migrations, numbered as it numbers them
-- (the version is the position in OFFICIAL), with its exact texts: a database set up by
-- either package looks migrated to the other.
CREATE TABLE IF NOT EXISTS {store} (
        prefix text NOT NULL,
        key text NOT NULL,
        value jsonb NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (prefix, key)
    );

-- name: store_prefix_index
-- Official migration 1.
CREATE INDEX IF NOT EXISTS store_prefix_idx ON {store} USING btree (prefix text_pattern_ops);

-- name: store_ttl_columns
-- Official migration 2.
ALTER TABLE {store}
        ADD COLUMN IF NOT EXISTS expires_at TIMESTAMP WITH TIME ZONE,
        ADD COLUMN IF NOT EXISTS ttl_minutes INT;

-- name: store_expiry_index
-- Official migration 3.
CREATE INDEX IF NOT EXISTS idx_store_expires_at ON {store} (expires_at) WHERE expires_at IS NOT NULL;

-- name: vector_extension
-- Official vector migration 0: pgvector itself.
CREATE EXTENSION IF NOT EXISTS vector;

-- name: vector_table
-- Official vector migration 1.
CREATE TABLE IF NOT EXISTS {vectors} (
        prefix text NOT NULL,
        key text NOT NULL,
        field_name text NOT NULL,
        embedding {vector_type}({dims}),
        created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (prefix, key, field_name),
        FOREIGN KEY (prefix, key) REFERENCES {store} (prefix, key) ON DELETE CASCADE
    );

-- name: vector_index
-- Official vector migration 2: the ANN index (skipped, and not recorded, for a flat
-- index, exactly as the official store does).
CREATE INDEX IF NOT EXISTS store_vectors_embedding_idx ON {vectors} USING {index_kind} (embedding {opclass}){index_params};

-- name: number_case
-- Not a migration: a JSON value `v` as a number, every case; the body that
-- number_function_inline and number_function_full render as {number_case}.
CASE jsonb_typeof(v)
            WHEN 'number' THEN CASE
                WHEN length(v #>> '{}') < 300 AND strpos(v #>> '{}', 'e') = 0
                     AND strpos(v #>> '{}', 'E') = 0 THEN (v #>> '{}')::double precision
                WHEN abs((v #>> '{}')::numeric) > 1.7976931348623157e308 THEN NULL
                WHEN abs((v #>> '{}')::numeric) < 5e-324 THEN 0.0
                ELSE (v #>> '{}')::numeric::double precision END
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1.0 ELSE 0.0 END
            WHEN 'string' THEN CASE
                WHEN length(v #>> '{}') > 1000
                     OR (v #>> '{}') !~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,4})?\s*$'
                THEN NULL
                WHEN abs((v #>> '{}')::numeric) > 1.7976931348623157e308 THEN
                    CASE WHEN (v #>> '{}')::numeric > 0 THEN 'Infinity'::float8
                         ELSE '-Infinity'::float8 END
                WHEN abs((v #>> '{}')::numeric) < 5e-324 THEN 0.0
                ELSE (v #>> '{}')::numeric::double precision END
        END;

-- name: value_index
-- Own migration 0 (this project's, recorded in store_pg_migrations; the official store
-- ignores them). Equality and nested-object filters become containment, answered by this index.
CREATE INDEX IF NOT EXISTS store_value_idx ON {store} USING gin (value jsonb_path_ops);

-- name: number_function_v1
-- Own migration 1. A JSON value as a number the way LangGraph's in-memory store compares
-- them (numbers, booleans as 0/1, numeric strings), NULL otherwise. IMMUTABLE, so range
-- filters on a field can be served by an expression index on it.
CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE jsonb_typeof(v)
            WHEN 'number' THEN (v #>> '{}')::double precision
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1.0 ELSE 0.0 END
            WHEN 'string' THEN CASE
                WHEN (v #>> '{}') ~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$'
                THEN (v #>> '{}')::double precision END
        END $$;

-- name: ttl_exact_minutes_column
-- Own migration 2. The exact TTL in minutes (the official INT column rounds 0.5
-- minutes away); read first.
ALTER TABLE {store} ADD COLUMN IF NOT EXISTS ttl_exact_minutes DOUBLE PRECISION;

-- name: number_function_in_range
-- Own migration 3. The same function without errors for numbers beyond a double's
-- range (JSONB keeps 1e400 exactly; the cast failed the whole search, and any put to a field
-- with a range index). As Python's float() has it: a numeric string beyond the range is an
-- infinity, one below the smallest double is 0; a JSON number beyond the range (an int to
-- Python) cannot be compared, so it matches nothing.
CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN n IS NULL THEN NULL
            WHEN abs(n) > 1.7976931348623157e308 THEN CASE WHEN is_text THEN
                CASE WHEN n > 0 THEN 'Infinity'::float8 ELSE '-Infinity'::float8 END END
            WHEN abs(n) < 5e-324 THEN 0.0
            ELSE n::double precision END
        FROM (SELECT CASE jsonb_typeof(v)
            WHEN 'number' THEN (v #>> '{}')::numeric
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1 ELSE 0 END
            WHEN 'string' THEN CASE
                WHEN length(v #>> '{}') <= 1000
                     AND (v #>> '{}') ~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,4})?\s*$'
                THEN (v #>> '{}')::numeric END
        END AS n, jsonb_typeof(v) = 'string' AS is_text) AS parsed $$;

-- name: number_function_inline
-- Own migration 4. The same answers as one expression: a SQL function PostgreSQL can
-- inline (no FROM), so an index on it (range_index_fields) and range filters evaluate it
-- without the function executor. Plain JSON numbers (no exponent, under 300 characters)
-- cannot leave a double's range and take the direct cast; the others go through numeric.
CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT {number_case} $$;

-- name: ttl_exact_at_column
-- Own migration 5. Which write set ttl_exact_minutes: the updated_at of that write. The
-- official store overwrites an item without touching ttl_exact_minutes; its new updated_at
-- then tells that the exact value is stale (see refreshed expiry in queries.sql).
ALTER TABLE {store} ADD COLUMN IF NOT EXISTS ttl_exact_at TIMESTAMPTZ;

-- name: number_function_full
-- Own migration 6. The number function's every case in a function PostgreSQL does not
-- inline, for the values the short form below hands over: strings, and numbers whose text is
-- 300 characters or more (JSONB prints numbers without exponents, so 1e400 is 401 digits).
CREATE OR REPLACE FUNCTION {number_full}(v jsonb) RETURNS double precision
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
        BEGIN
        RETURN {number_case};
        END $fn$;

-- name: number_function_short
-- Own migration 7. The same answers, with a short inlined expression: PostgreSQL
-- compiles a range index's expression for every INSERT statement, and the whole CASE costs a
-- put more there (benchmarks/RESULTS.md, "Design measurements"). Plain numbers, the common
-- case, stay inline; the rest call the function above (a missing key never does: it is
-- STRICT). {number_body} is
-- number_short_body as a string literal, naming the full function by its schema-qualified
-- name (PostgreSQL 17+ runs CREATE INDEX, ANALYZE and autovacuum with a search_path of
-- pg_catalog only).
CREATE OR REPLACE FUNCTION {number}(v jsonb) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS {number_body};

-- name: setup_lock
-- Serialises concurrent setups of one schema, until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock)s, 0));

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema};

-- name: version_table
-- Each list of migrations records the versions it applied in its own table.
CREATE TABLE IF NOT EXISTS {table} (v INTEGER PRIMARY KEY);

-- name: version_current
SELECT max(v) FROM {table};

-- name: version_record
INSERT INTO {table} (v) VALUES (%(version)s) ON CONFLICT DO NOTHING;

-- name: vector_available
SELECT 1 FROM pg_available_extensions WHERE name = 'vector';

-- name: tables_present
-- Which of the named tables (schema-qualified as the code quotes them) exist: setup's
-- distributed mode shards store_vectors and replicates vector_migrations only when present.
SELECT t.name FROM unnest(%(names)s::text[]) AS t(name) WHERE to_regclass(t.name) IS NOT NULL;

-- name: current_schema
SELECT current_schema();

-- name: range_index
-- An expression index serving range filters ($gt...) on one field path ({path}, literals).
CREATE INDEX IF NOT EXISTS {index} ON {store} ({number}({path}));

-- name: number_short_body
-- The body of number_function_short (see there).
SELECT CASE WHEN jsonb_typeof(v) = 'number' AND length(v::text) < 300 THEN v::double precision ELSE {number_full}(v) END;

-- name: text_column
-- The full-text search column of one configuration ({column}; {document}: its expression,
-- store._text): computed by PostgreSQL on every write, whoever writes. Adding it rewrites the
-- table once.
ALTER TABLE {store} ADD COLUMN IF NOT EXISTS {column} tsvector GENERATED ALWAYS AS ({document}) STORED;

-- name: text_index
CREATE INDEX IF NOT EXISTS {index} ON {store} USING gin ({column});

-- name: text_config_exists
-- Whether the text index's text search configuration exists (regconfig input rules).
SELECT 1 FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
WHERE c.cfgname = %(name)s AND (n.nspname = %(schema)s
      OR (%(schema)s IS NULL AND pg_ts_config_is_visible(c.oid)));
