-- Statements of `PostgresCache` / `AsyncPostgresCache` (LangGraph's node cache).
-- {cache} and {migrations} are the cache's tables, schema-qualified when a schema is set.
-- A namespace is stored as the canonical JSON text of its labels (see _core.namespace_text),
-- so any tuple of strings, NUL included, is one comparable text value.

-- name: xact_lock_setup
-- Serialises concurrent setups of one schema's cache until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock_key)s, 0));

-- name: migration_0
CREATE TABLE IF NOT EXISTS {migrations} (v integer PRIMARY KEY);

-- name: latest_migration
SELECT max(v) FROM {migrations};

-- name: record_migration
INSERT INTO {migrations} (v) VALUES (%(v)s) ON CONFLICT DO NOTHING;

-- name: migration_1
-- One row per cached node result: its serializer type tag and bytes, and when it expires
-- (NULL: never). The primary key serves get, set and clear by namespace (its leading column).
CREATE {persistence} TABLE IF NOT EXISTS {cache} (
    ns text NOT NULL,
    key text NOT NULL,
    type text NOT NULL,
    value bytea NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (ns, key)
);

-- name: migration_2
-- The sweeper's index: only entries that can expire are in it.
CREATE INDEX IF NOT EXISTS {expiry_index} ON {cache} (expires_at)
    WHERE expires_at IS NOT NULL;

-- name: persistence
-- 'u' for an UNLOGGED table, 'p' for an ordinary (logged) one.
SELECT relpersistence FROM pg_class WHERE oid = to_regclass(%(table)s);

-- name: set_unlogged
ALTER TABLE {cache} SET UNLOGGED;

-- name: set_logged
ALTER TABLE {cache} SET LOGGED;

-- name: get
-- Every asked-for entry that has not expired, in one statement (one PK probe per key).
SELECT c.ns, c.key, c.type, c.value
FROM unnest(%(ns)s::text[], %(keys)s::text[]) AS k(ns, key)
JOIN {cache} AS c ON c.ns = k.ns AND c.key = k.key
WHERE c.expires_at IS NULL OR c.expires_at > statement_timestamp();

-- name: set
-- Upsert a batch in one statement. Rows arrive sorted by (ns, key), so concurrent writers of
-- overlapping batches lock rows in the same order and never deadlock. A NULL ttl never expires.
INSERT INTO {cache} AS c (ns, key, type, value, expires_at)
SELECT ns, key, type, value,
       statement_timestamp() + make_interval(secs => ttl)
FROM unnest(%(ns)s::text[], %(keys)s::text[], %(types)s::text[], %(values)s::bytea[],
            %(ttls)s::float8[]) AS r(ns, key, type, value, ttl)
ON CONFLICT (ns, key) DO UPDATE
SET type = excluded.type, value = excluded.value, expires_at = excluded.expires_at;

-- name: clear_namespaces
DELETE FROM {cache} WHERE ns = ANY(%(ns)s::text[]);

-- name: clear_all
-- DELETE, not TRUNCATE: TRUNCATE would wait for (and block) every concurrent reader.
DELETE FROM {cache};

-- name: sweep
-- At most %(limit)s expired entries, oldest expiry first; rows another sweeper holds are
-- skipped, so sweepers never wait on each other. Returns how many were deleted.
WITH doomed AS (
    SELECT ns, key FROM {cache}
    WHERE expires_at <= statement_timestamp()
    ORDER BY expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM {cache} AS c USING doomed AS d
    WHERE c.ns = d.ns AND c.key = d.key
    RETURNING 1
)
SELECT count(*) FROM gone;
