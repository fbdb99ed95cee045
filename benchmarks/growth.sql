-- Bulk loading for benchmarks/growth.py: replicas of one template thread that our saver wrote.
-- A loaded checkpoint `k` is template checkpoint `k % template` with its own ids, versions,
-- step and run id (and `ts`, when its thread has a `born`), and its own payload blob and
-- pending write; every thread also gets the template's `static` blob, which every
-- checkpoint's channel_versions names.

-- name: functions
CREATE FUNCTION growth_checkpoint_id(k bigint) RETURNS text IMMUTABLE LANGUAGE sql
    RETURN '1ef00000-0000-6000-8000-' || lpad(to_hex(k), 12, '0');
CREATE FUNCTION growth_version(k bigint) RETURNS text IMMUTABLE LANGUAGE sql
    RETURN lpad((k + 1)::text, 32, '0') || '.0.' || lpad(k::text, 16, '0');

-- name: template_table
-- The template's checkpoints in order, each with its payload blob and its one write.
CREATE TABLE growth_template AS
SELECT row_number() OVER (ORDER BY c.checkpoint_id) - 1 AS pos, c.checkpoint, c.metadata,
       b.type AS payload_type, b.blob AS payload_blob,
       w.task_id, w.channel AS write_channel, w.type AS write_type, w.blob AS write_blob
FROM checkpoints AS c
JOIN checkpoint_blobs AS b
    ON b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns
   AND b.channel = 'payload' AND b.version = c.checkpoint -> 'channel_versions' ->> 'payload'
JOIN checkpoint_writes AS w
    ON w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns
   AND w.checkpoint_id = c.checkpoint_id
WHERE c.thread_id = 'template';

-- name: threads_table
-- The threads to load. `born`, when set, is the `ts` of the thread's first checkpoint (each
-- next one a second later); when NULL the checkpoints keep the template's `ts`. `metadata`,
-- when set, is added to every checkpoint's metadata.
CREATE TABLE growth_threads
    (thread_id text PRIMARY KEY, length int NOT NULL, born timestamptz, metadata jsonb);

-- name: load_checkpoints
INSERT INTO checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT t.thread_id, '', growth_checkpoint_id(k),
       CASE WHEN k > 0 THEN growth_checkpoint_id(k - 1) END,
       jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(g.checkpoint,
           ARRAY['id'], to_jsonb(growth_checkpoint_id(k))),
           ARRAY['ts'], coalesce(to_jsonb(to_char((t.born + k * interval '1 second')
               AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')), g.checkpoint -> 'ts')),
           ARRAY['channel_versions', 'payload'], to_jsonb(growth_version(k))),
           ARRAY['channel_versions', 'step'], to_jsonb(growth_version(k))),
           ARRAY['versions_seen', 'worker', 'payload'], to_jsonb(growth_version(k))),
           ARRAY['channel_values', 'step'], to_jsonb(k)),
       g.metadata || jsonb_build_object('step', k, 'run_id', 'run-' || t.thread_id)
           || coalesce(t.metadata, '{}')
FROM growth_threads AS t
CROSS JOIN LATERAL generate_series(0, t.length - 1) AS k
JOIN growth_template AS g ON g.pos = k %% %(template)s;

-- name: load_blobs
INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
SELECT t.thread_id, '', 'payload', growth_version(k), g.payload_type, g.payload_blob
FROM growth_threads AS t
CROSS JOIN LATERAL generate_series(0, t.length - 1) AS k
JOIN growth_template AS g ON g.pos = k %% %(template)s;

-- name: load_static_blobs
INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
SELECT t.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, b.blob
FROM growth_threads AS t
CROSS JOIN checkpoint_blobs AS b
WHERE b.thread_id = 'template' AND b.channel = 'static';

-- name: load_writes
INSERT INTO checkpoint_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT t.thread_id, '', growth_checkpoint_id(k), g.task_id, '', 0, g.write_channel,
       g.write_type, g.write_blob
FROM growth_threads AS t
CROSS JOIN LATERAL generate_series(0, t.length - 1) AS k
JOIN growth_template AS g ON g.pos = k %% %(template)s;

-- name: table_bytes
-- Heap and TOAST bytes, and index bytes, of the three checkpoint tables.
SELECT sum(pg_table_size(c.oid)), sum(pg_indexes_size(c.oid))
FROM pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relname IN ('checkpoints', 'checkpoint_blobs', 'checkpoint_writes');
