-- Creating and migrating the checkpoint tables (see checkpoint_pg/_schema.py).
--
-- `official_N` is the official package's migration N. The numbering is theirs: a database
-- set up by either package must look migrated to the other, so these are written exactly as
-- the official saver writes them. They run in one transaction, so index builds are plain,
-- not CONCURRENTLY: setup is all-or-nothing.

-- name: official_0
CREATE TABLE IF NOT EXISTS {migrations} (v INTEGER PRIMARY KEY);

-- name: official_1
CREATE TABLE IF NOT EXISTS {checkpoints} (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint JSONB NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);

-- name: official_2
CREATE TABLE IF NOT EXISTS {blobs} (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob BYTEA,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

-- name: official_3
CREATE TABLE IF NOT EXISTS {writes} (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    blob BYTEA NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- name: official_4
ALTER TABLE {blobs} ALTER COLUMN blob DROP NOT NULL;

-- name: official_5
SELECT 1;

-- name: official_6
CREATE INDEX IF NOT EXISTS checkpoints_thread_id_idx ON {checkpoints} (thread_id);

-- name: official_7
CREATE INDEX IF NOT EXISTS checkpoint_blobs_thread_id_idx ON {blobs} (thread_id);

-- name: official_8
CREATE INDEX IF NOT EXISTS checkpoint_writes_thread_id_idx ON {writes} (thread_id);

-- name: official_9
ALTER TABLE {writes} ADD COLUMN IF NOT EXISTS task_path TEXT NOT NULL DEFAULT '';

-- name: own_0
-- `own_N` is this project's own migration N, recorded in `checkpoint_pg_migrations` (never in
-- the official table). Each is idempotent; the official saver ignores what they add.
CREATE TABLE IF NOT EXISTS {own_migrations} (
    v INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- name: own_1
-- Serves metadata filters (`list(filter=…)`, across threads too) and delete_for_runs.
CREATE INDEX IF NOT EXISTS checkpoints_metadata_idx
ON {checkpoints} USING gin (metadata jsonb_path_ops);

-- name: own_2
-- Superseded by own_4, which sets these columns back to the server's default (pglz).
-- lz4 instead of pglz for values PostgreSQL compresses (those over ~2 KB), where the server
-- has it (14+, built with lz4). A storage setting, invisible to every reader, the official
-- saver included; it applies to values written from now on. Chosen on word-salad benchmark
-- text that pglz gave up on; on prose-like text pglz stores fewer bytes than lz4
-- (benchmarks/RESULTS.md, "Bytes on disk: pglz, lz4 and prose").
-- EXECUTE, so that servers older than 14 never parse SET COMPRESSION.
DO $checkpoint_pg_lz4$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE ' || {blobs_text} || ' ALTER COLUMN blob SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE ' || {writes_text} || ' ALTER COLUMN blob SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE ' || {checkpoints_text}
            || ' ALTER COLUMN checkpoint SET COMPRESSION lz4';
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;  -- a server built without lz4 keeps pglz
END
$checkpoint_pg_lz4$;

-- name: own_3
-- Superseded by own_4 as own_2 is. own_2's lz4, on each partition of partitioned tables: PostgreSQL sets a column's compression
-- on the partitioned parent only, and setup creates the partitions before own_2 runs, so they
-- kept pglz. Unpartitioned tables (a partition tree of one) and servers without lz4: nothing.
DO $checkpoint_pg_lz4_partitions$
DECLARE
    part regclass;
    col text;
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        FOR part, col IN
            SELECT t.relid, c.col
            FROM (VALUES ({blobs_text}, 'blob'), ({writes_text}, 'blob'),
                         ({checkpoints_text}, 'checkpoint')) AS c(tbl, col)
            CROSS JOIN LATERAL pg_partition_tree(to_regclass(c.tbl)) AS t
            WHERE t.relid <> to_regclass(c.tbl)
        LOOP
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION lz4', part, col);
        END LOOP;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;  -- a server built without lz4 keeps pglz
END
$checkpoint_pg_lz4_partitions$;

-- name: own_4
-- Back to the server's default TOAST compression (default_toast_compression, pglz unless an
-- administrator changed it), as the official saver's tables have, on every column own_2 and
-- own_3 switched to lz4: the tables and each of their partitions (pg_partition_tree lists
-- the partitions, and nothing for a plain table). On prose-like message text
-- pglz stores fewer bytes than lz4 (benchmarks/RESULTS.md, "Bytes on disk: pglz, lz4 and
-- prose"); `compression="lz4"` on the saver opts back in at setup(). Like every SET
-- COMPRESSION, this applies to values written from now on: values already stored with lz4
-- stay as they are, readable by every reader, until their rows are deleted or pruned.
-- The catalog is read through to_jsonb, so that servers older than 14 (no attcompression)
-- find nothing to do.
DO $checkpoint_pg_default_compression$
DECLARE
    part regclass;
    col text;
BEGIN
    FOR part, col IN
        SELECT t.relid, c.col
        FROM (VALUES ({blobs_text}, 'blob'), ({writes_text}, 'blob'),
                     ({checkpoints_text}, 'checkpoint')) AS c(tbl, col)
        CROSS JOIN LATERAL (
            SELECT to_regclass(c.tbl) AS relid
            UNION SELECT relid FROM pg_partition_tree(to_regclass(c.tbl))
        ) AS t
        JOIN pg_attribute AS a ON a.attrelid = t.relid AND a.attname = c.col
        WHERE to_jsonb(a) ->> 'attcompression' = 'l'
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION default', part, col);
    END LOOP;
END
$checkpoint_pg_default_compression$;

-- name: column_compression
-- The columns `compression=` sets, on each table and each of its partitions, with their
-- current setting ('' the server's default, 'p' pglz, 'l' lz4; NULL before PostgreSQL 14).
SELECT n.nspname, c.relname, col.col, to_jsonb(a) ->> 'attcompression'
FROM (VALUES (%(blobs)s, 'blob'), (%(writes)s, 'blob'), (%(checkpoints)s, 'checkpoint'))
    AS col(tbl, col)
CROSS JOIN LATERAL (
    SELECT to_regclass(col.tbl) AS relid
    UNION SELECT relid FROM pg_partition_tree(to_regclass(col.tbl))
) AS t
JOIN pg_class AS c ON c.oid = t.relid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = t.relid AND a.attname = col.col
ORDER BY n.nspname, c.relname, col.col;

-- name: set_column_compression
-- One column of one table (or partition) to `compression=`'s method, for new values.
ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema};

-- name: nothing
-- Stands in for a step with nothing to do (creating the schema when there is none).
SELECT 1;

-- name: xact_lock_migrations
-- Serialises concurrent setups of one schema until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock_key)s, 0));

-- name: latest_migration
SELECT max(v) FROM {migrations};

-- name: record_migration
INSERT INTO {migrations} (v) VALUES (%(v)s) ON CONFLICT DO NOTHING;

-- name: latest_own_migration
SELECT max(v) FROM {own_migrations};

-- name: record_own_migration
INSERT INTO {own_migrations} (v) VALUES (%(v)s) ON CONFLICT DO NOTHING;

-- name: partitioned_table
-- Opt-in hash partitioning by thread_id (`partitions=N`): official migration 1, 2 or 3
-- (`create_table`) creating a hash-partitioned parent (same columns, keys and defaults: every
-- primary key starts with thread_id, the partition key), to which N partitions are added. The
-- official migrations then run over them as usual: the CREATE TABLEs find them, the later
-- ALTERs and plain CREATE INDEXes apply to the parent and propagate to every partition.
{create_table} PARTITION BY {partition_key};

-- name: partition
CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {parent}
FOR VALUES WITH (MODULUS {modulus}, REMAINDER {remainder});

-- name: table_layout
-- For each checkpoint table that exists: its kind ('r' table, 'p' partitioned), its
-- partition key and how many partitions it has.
SELECT t.name, c.relkind::text,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       (SELECT count(*) FROM pg_inherits AS i WHERE i.inhparent = c.oid)
FROM unnest(%(names)s::text[]) AS t(name)
JOIN pg_class AS c ON c.oid = to_regclass(t.name);
