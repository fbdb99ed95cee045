-- The statements the operator commands run themselves (the rest goes through the saver and
-- the store). Parts: {checkpoints}, {blobs}, {writes}, {store}, {vectors} are the tables, in
-- --schema when one is given (see checkpoint_pg/cli/ops/common.py); {table} is one of them;
-- {where} is a condition composed by the command. Everything else is a %(parameter)s.

-- name: table_exists
-- Whether the table named by %(table)s (schema-qualified text) exists.
SELECT to_regclass(%(table)s) IS NOT NULL;

-- name: server
-- doctor: the server's version, the database, the user, the first schema on the search_path.
SELECT current_setting('server_version'), current_setting('server_version_num')::int,
       current_database(), current_user, current_schema(), pg_is_in_recovery();

-- name: backend
-- doctor: the server backend running our queries and the port it listens on (a pooler shows
-- the client another backend id).
SELECT pg_backend_pid(), inet_server_port();

-- name: pgvector_versions
-- doctor: the pgvector version available on the server and the one installed, if any.
SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector';

-- name: table_size
-- Bytes (with indexes and TOAST), estimated rows, and whether it was never analyzed, of the
-- table named by %(table)s. A partitioned table's own size is 0: its partitions are added
-- (pg_partition_tree returns nothing for a plain table).
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint,
       coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint, bool_or(c.reltuples < 0)
FROM pg_class AS c
WHERE c.oid = to_regclass(%(table)s)
   OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(%(table)s)));

-- name: checkpoint_ids_with_prefix
-- The checkpoint ids a typed prefix may mean ({where}: thread, prefix, maybe namespace).
SELECT DISTINCT checkpoint_id FROM {checkpoints} WHERE {where}
ORDER BY checkpoint_id LIMIT %(limit)s;

-- name: neighbour_ids
-- For each (thread, checkpoint id): the ids just before and after it in its thread.
SELECT k.thread_id, k.checkpoint_id,
       (SELECT max(c.checkpoint_id) FROM {checkpoints} AS c
        WHERE c.thread_id = k.thread_id AND c.checkpoint_id < k.checkpoint_id),
       (SELECT min(c.checkpoint_id) FROM {checkpoints} AS c
        WHERE c.thread_id = k.thread_id AND c.checkpoint_id > k.checkpoint_id)
FROM unnest(%(thread_ids)s::text[], %(checkpoint_ids)s::text[]) AS k(thread_id, checkpoint_id);

-- name: history_page
-- history: the newest checkpoints matching {where}, with their pending writes counted.
SELECT c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint_ns,
       c.metadata -> 'step', c.metadata ->> 'source', c.checkpoint ->> 'ts',
       (SELECT count(*) FROM {writes} AS w
        WHERE w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns
          AND w.checkpoint_id = c.checkpoint_id) AS writes,
       c.metadata
FROM {checkpoints} AS c
WHERE {where}
ORDER BY c.checkpoint_id DESC, c.checkpoint_ns
LIMIT %(limit)s;

-- name: history_count
-- history: how many checkpoints match {where} in all.
SELECT count(*) FROM {checkpoints} AS c WHERE {where};

-- name: thread_exists
-- Whether the thread has any checkpoint.
SELECT EXISTS (SELECT 1 FROM {checkpoints} WHERE thread_id = %(thread_id)s);

-- name: thread_checkpoints
-- How many checkpoints the thread has (every namespace).
SELECT count(*) FROM {checkpoints} WHERE thread_id = %(thread_id)s;

-- name: count_threads
-- How many threads have checkpoints.
SELECT count(DISTINCT thread_id) FROM {checkpoints};

-- name: count_rows
-- How many rows {table} holds.
SELECT count(*) FROM {table};

-- name: count_expired_store_items
-- stats: store items past their expiry, waiting for a sweep.
SELECT count(*) FROM {store} WHERE expires_at IS NOT NULL AND expires_at < now();

-- name: biggest_threads
-- stats: the threads storing the most bytes (checkpoints and metadata, blobs, writes).
WITH c AS (
    SELECT thread_id, count(*) AS checkpoints,
           sum(pg_column_size(checkpoint) + pg_column_size(metadata)) AS bytes
    FROM {checkpoints} GROUP BY thread_id
), b AS (
    SELECT thread_id, count(*) AS blobs, sum(coalesce(pg_column_size(blob), 0)) AS bytes
    FROM {blobs} GROUP BY thread_id
), w AS (
    SELECT thread_id, count(*) AS writes, sum(pg_column_size(blob)) AS bytes
    FROM {writes} GROUP BY thread_id
)
SELECT c.thread_id, c.checkpoints, coalesce(b.blobs, 0), coalesce(w.writes, 0),
       (c.bytes + coalesce(b.bytes, 0) + coalesce(w.bytes, 0))::bigint AS total
FROM c LEFT JOIN b USING (thread_id) LEFT JOIN w USING (thread_id)
ORDER BY total DESC, c.thread_id LIMIT %(limit)s;

-- name: vector_column_type
-- store search: the type of the stored embeddings, e.g. vector(1536), in the table named by
-- %(table)s.
SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
WHERE a.attrelid = to_regclass(%(table)s) AND a.attname = 'embedding';

-- name: vector_index_definitions
-- store search: the definition of the embeddings' ANN index in %(schema)s (NULL: the
-- search_path's first schema), whose operator class names the distance.
SELECT indexdef FROM pg_indexes WHERE indexname = 'store_vectors_embedding_idx'
  AND schemaname = coalesce(%(schema)s, current_schema());

-- name: reencrypt_blobs_page
-- reencrypt: the next page of sealed blobs (values and checkpoint seals), in primary-key
-- order after the last one read (%(first)s: from the start), of one thread or of all.
SELECT thread_id, checkpoint_ns, channel, version, type, blob
FROM {blobs}
WHERE type LIKE '%%+rowaead'
  AND (%(thread_id)s::text IS NULL OR thread_id = %(thread_id)s::text)
  AND (%(first)s OR (thread_id, checkpoint_ns, channel, version)
                    > (%(a1)s::text, %(a2)s::text, %(a3)s::text, %(a4)s::text))
ORDER BY thread_id, checkpoint_ns, channel, version
LIMIT %(limit)s;

-- name: reencrypt_blob
-- reencrypt: replace one blob's sealed value, only if it is still the one that was read.
UPDATE {blobs} SET blob = %(new)s
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND channel = %(channel)s AND version = %(version)s AND blob = %(old)s
RETURNING 1;

-- name: reencrypt_writes_page
-- reencrypt: the next page of sealed writes, as reencrypt_blobs_page.
SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, blob
FROM {writes}
WHERE type LIKE '%%+rowaead'
  AND (%(thread_id)s::text IS NULL OR thread_id = %(thread_id)s::text)
  AND (%(first)s OR (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
                    > (%(a1)s::text, %(a2)s::text, %(a3)s::text, %(a4)s::text, %(a5)s::int))
ORDER BY thread_id, checkpoint_ns, checkpoint_id, task_id, idx
LIMIT %(limit)s;

-- name: reencrypt_write
-- reencrypt: replace one write's sealed value, only if it is still the one that was read.
UPDATE {writes} SET blob = %(new)s
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND checkpoint_id = %(checkpoint_id)s AND task_id = %(task_id)s AND idx = %(idx)s
  AND blob = %(old)s
RETURNING 1;

-- name: reencrypt_store_page
-- reencrypt: the next page of sealed store items, in primary-key order.
SELECT prefix, key, value
FROM {store}
WHERE value ? '$rowaead'
  AND (%(first)s OR (prefix, key) > (%(a1)s::text, %(a2)s::text))
ORDER BY prefix, key
LIMIT %(limit)s;

-- name: reencrypt_store_item
-- reencrypt: replace one item's sealed value, only if it is still the one that was read.
UPDATE {store} SET value = %(new_value)s::jsonb
WHERE prefix = %(prefix)s AND key = %(key)s AND value = %(old_value)s::jsonb
RETURNING 1;

-- name: delta_threads_page
-- convert-storage --to official: the next threads (after %(after)s, NULL: from the first)
-- holding delta rows (type 'cpg-delta:<base>', checkpoint_pg/_delta.py), or just one.
SELECT DISTINCT thread_id FROM {blobs}
WHERE left(type, 10) = 'cpg-delta:'
  AND (%(thread_id)s::text IS NULL OR thread_id = %(thread_id)s::text)
  AND (%(after)s::text IS NULL OR thread_id > %(after)s::text)
ORDER BY thread_id
LIMIT %(limit)s;

-- name: blob_threads_page
-- convert-storage --to delta: the next threads (after %(after)s) holding plain msgpack blobs.
SELECT DISTINCT thread_id FROM {blobs}
WHERE type = 'msgpack'
  AND (%(thread_id)s::text IS NULL OR thread_id = %(thread_id)s::text)
  AND (%(after)s::text IS NULL OR thread_id > %(after)s::text)
ORDER BY thread_id
LIMIT %(limit)s;

-- name: delta_channel_rows
-- convert-storage --to official: every blob of the thread's channels that hold deltas,
-- locked until the thread's transaction ends (no base goes while it is rebuilt).
SELECT checkpoint_ns, channel, version, type, blob FROM {blobs} AS b
WHERE b.thread_id = %(thread_id)s
  AND (b.checkpoint_ns, b.channel) IN (
      SELECT checkpoint_ns, channel FROM {blobs}
      WHERE thread_id = %(thread_id)s AND left(type, 10) = 'cpg-delta:')
ORDER BY checkpoint_ns, channel, version
FOR KEY SHARE;

-- name: thread_blob_rows
-- convert-storage --to delta: every blob of a thread, in version order per channel, locked
-- until the thread's transaction ends (no future base goes while deltas are made).
SELECT checkpoint_ns, channel, version, type, blob FROM {blobs}
WHERE thread_id = %(thread_id)s
ORDER BY checkpoint_ns, channel, version
FOR KEY SHARE;

-- name: convert_blob
-- convert-storage: one blob to its other form, only if it is still of the type read.
UPDATE {blobs} SET type = %(new_type)s, blob = %(new_blob)s
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND channel = %(channel)s AND version = %(version)s AND type = %(old_type)s
RETURNING 1;
