-- The statements of get_tuple, list, put and put_writes (see checkpoint_pg/_core.py).
-- Each is a single statement, one network round trip: data-modifying CTEs and `unnest` over
-- arrays replace a statement per row.

-- name: select_tuple
-- The part of every read shared by get_tuple and list: a checkpoint row with everything a
-- `CheckpointTuple` needs, fetched in one round trip: the blobs of its channel versions, its
-- pending writes and, for checkpoints saved before format v4, the pending sends that lived in
-- its parent's writes. Callers add the WHERE clause (and ORDER BY, LIMIT), and `{thread}`:
-- the thread_id parameter when the statement is about one thread, else `c.thread_id`. With
-- the parameter, every table in the statement is filtered by the same constant thread_id,
-- which Citus needs to send the whole statement to the one shard holding the thread (a
-- correlated `c.thread_id` is not enough for its router); a single server plans it the same.
-- `{channel_blobs}` is how the blobs are found (channel_blobs_by_probe, by_semijoin, or
-- by_chain in delta storage, whose rows `{blob_order}` orders).
SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id,
       c.checkpoint, c.metadata,
       b.channels, b.types, b.blobs,
       w.task_ids, w.task_paths, w.idxs, w.channels, w.types, w.blobs,
       s.types, s.blobs
FROM {source}
LEFT JOIN LATERAL (
    SELECT array_agg(bl.channel {blob_order}) AS channels, array_agg(bl.type {blob_order}) AS types,
           array_agg(bl.blob {blob_order}) AS blobs
    {channel_blobs}
) AS b ON TRUE
LEFT JOIN LATERAL (
    SELECT array_agg(cw.task_id) AS task_ids, array_agg(cw.task_path) AS task_paths,
           array_agg(cw.idx) AS idxs, array_agg(cw.channel) AS channels,
           array_agg(cw.type) AS types, array_agg(cw.blob) AS blobs
    FROM {writes} AS cw
    WHERE cw.thread_id = {thread} AND cw.checkpoint_ns = c.checkpoint_ns
      AND cw.checkpoint_id = c.checkpoint_id
) AS w ON TRUE
LEFT JOIN LATERAL (
    SELECT array_agg(sw.type ORDER BY sw.task_path, sw.task_id, sw.idx) AS types,
           array_agg(sw.blob ORDER BY sw.task_path, sw.task_id, sw.idx) AS blobs
    FROM {writes} AS sw
    WHERE (c.checkpoint ->> 'v')::int < 4 AND c.parent_checkpoint_id IS NOT NULL
      AND sw.thread_id = {thread} AND sw.checkpoint_ns = c.checkpoint_ns
      AND sw.checkpoint_id = c.parent_checkpoint_id AND sw.channel = %(tasks)s
) AS s ON TRUE;

-- name: channel_blobs_by_probe
-- One primary-key probe per channel of the checkpoint's channel_versions. LIMIT 1 keeps the
-- planner from hash-joining all of the thread's blobs, which it otherwise does, so the cost
-- grew with thread length.
FROM jsonb_each_text(c.checkpoint -> 'channel_versions') AS v(channel, version)
CROSS JOIN LATERAL (
    SELECT x.channel, x.type, x.blob FROM {blobs} AS x
    WHERE x.thread_id = {thread} AND x.checkpoint_ns = c.checkpoint_ns
      AND x.channel = v.channel AND x.version = v.version
    LIMIT 1
) AS bl

-- name: channel_blobs_by_semijoin
-- The Citus form of channel_blobs_by_probe, for statements over many threads, which Citus
-- runs on every shard: it cannot push down a LIMIT inside a correlated subquery, nor a join
-- from a set-returning function in FROM to a distributed table ("cannot push down this
-- subquery"). This reads the (thread, namespace)'s blobs by primary-key prefix and keeps
-- those named in channel_versions: the cost grows with the thread's blob count, so a single
-- server keeps the probe.
FROM {blobs} AS bl
WHERE bl.thread_id = {thread} AND bl.checkpoint_ns = c.checkpoint_ns
  AND (bl.channel, bl.version) IN (
      SELECT v.key, v.value FROM jsonb_each_text(c.checkpoint -> 'channel_versions') AS v)

-- name: channel_blobs_by_chain
-- channel_blobs_by_probe for delta storage (checkpoint_pg/_delta.py): each channel's blob
-- and, while it is a delta (type 'cpg-delta:<base version>'), its base, and the base's base,
-- down to the full value its chain starts from (at most _delta.MAX_CHAIN + 1 primary-key
-- probes). The blob arrays hold every row of every chain, grouped by channel, base first
-- (`blob_order`).
FROM jsonb_each_text(c.checkpoint -> 'channel_versions') AS v(channel, version)
CROSS JOIN LATERAL (
    -- Each step is one primary-key probe: a LATERAL with LIMIT 1 on `base` (as a join,
    -- the planner scanned or hashed all of the channel's versions, whose number grows
    -- with the thread's history).
    WITH RECURSIVE chain (depth, type, blob, base) AS (
        (SELECT 0, x.type, x.blob,
                CASE WHEN left(x.type, 10) = 'cpg-delta:' THEN substr(x.type, 11) END
         FROM {blobs} AS x
         WHERE x.thread_id = {thread} AND x.checkpoint_ns = c.checkpoint_ns
           AND x.channel = v.channel AND x.version = v.version
         LIMIT 1)
        UNION ALL
        (SELECT chain.depth + 1, y.type, y.blob,
                CASE WHEN left(y.type, 10) = 'cpg-delta:' THEN substr(y.type, 11) END
         FROM chain CROSS JOIN LATERAL (
             SELECT z.type, z.blob FROM {blobs} AS z
             WHERE z.thread_id = {thread} AND z.checkpoint_ns = c.checkpoint_ns
               AND z.channel = v.channel AND z.version = chain.base
             LIMIT 1
         ) AS y
         WHERE chain.base IS NOT NULL)
    )
    SELECT v.channel, chain.depth, chain.type, chain.blob FROM chain
) AS bl

-- name: select_latest
-- get_tuple without a checkpoint_id: the namespace's newest checkpoint, as `{select_tuple}`'s
-- source (latest_checkpoint).
{select_tuple};

-- name: latest_checkpoint
-- The namespace's newest checkpoint row, chosen before select_tuple's lateral reads, so the
-- planner counts one row for them whatever the thread. With the reads under the ORDER BY and
-- LIMIT instead, it costs them per row of the thread it expects: the generic plan (the
-- thread's length unknown) came out dearer than the custom plans of the first runs, so the
-- server planned the prepared statement again on every call, which cost more than running it
-- on a short thread (benchmarks/RESULTS.md, "Growth: the savers from 10^4 to 10^6
-- checkpoints").
(
    SELECT l.thread_id, l.checkpoint_ns, l.checkpoint_id, l.parent_checkpoint_id,
           l.checkpoint, l.metadata
    FROM {checkpoints} AS l
    WHERE l.thread_id = %(thread_id)s AND l.checkpoint_ns = %(checkpoint_ns)s
    ORDER BY l.checkpoint_id DESC
    LIMIT 1
) AS c

-- name: select_by_id
{select_tuple}
WHERE c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
  AND c.checkpoint_id = %(checkpoint_id)s;

-- name: list_page
-- `list` pages by keyset on (checkpoint_id, thread_id, checkpoint_ns) descending, so a page
-- costs the same at any depth of a long thread and memory stays bounded. `{filters}` is the
-- AND of the filters given (see _sql/hot_path.py), so each combination is its own statement
-- text: a `%s IS NULL OR …` predicate would defeat the index once the server switches a
-- prepared statement to a generic plan. The page's keys are chosen first, from checkpoints
-- alone, and only its rows get their blobs and writes: joined before the sort, every
-- matching row of a long thread (or of every thread) would fetch them
-- (benchmarks/RESULTS.md, "Citus"). Citus runs the page as a subplan and ships its keys.
WITH page AS MATERIALIZED (
    SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id
    FROM {checkpoints} AS c
    WHERE {filters}
    ORDER BY c.checkpoint_id DESC, c.thread_id DESC, c.checkpoint_ns DESC
    LIMIT %(limit)s
)
{select_tuple}
{thread_filter}
ORDER BY c.checkpoint_id DESC, c.thread_id DESC, c.checkpoint_ns DESC;

-- name: insert_checkpoint
-- `put` of a checkpoint with no new blobs; the other put statements end with it.
INSERT INTO {checkpoints}
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
VALUES (%(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(parent_checkpoint_id)s,
        %(checkpoint)s, %(metadata)s)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata;

-- name: put_with_blob_arrays
-- One statement stores the new blobs and the checkpoint: atomic, one round trip. The arrays
-- travel in binary (`%(…)b`), not as text, where psycopg hex-escapes every blob and the
-- server parses an array literal (benchmarks/RESULTS.md, "Design measurements").
WITH new_blobs AS (
    INSERT INTO {blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, x.channel, x.version, x.type, x.blob
    FROM unnest(%(channels)b::text[], %(versions)b::text[], %(types)b::text[],
                %(blobs)b::bytea[]) AS x(channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
{insert_checkpoint};

-- name: put_with_blob_rows
-- A put with few blobs sends them as VALUES rows instead (`{rows}`, each a `blob_row`): one
-- statement text per row count, each prepared once, with no arrays to build on the client or
-- to unnest on the server (benchmarks/RESULTS.md, "Design measurements"). Larger puts use
-- put_with_blob_arrays.
WITH new_blobs AS (
    INSERT INTO {blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
    VALUES {rows}
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
{insert_checkpoint};

-- name: blob_row
-- One row of put_with_blob_rows; the parts are that row's numbered parameters.
(%(thread_id)s, %(checkpoint_ns)s, {channel}, {version}, {type}, {blob});

-- name: upsert_write_arrays
-- put_writes to the special channels of WRITES_IDX_MAP: a repeated write replaces the row.
INSERT INTO {writes}
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s,
       x.idx, x.channel, x.type, x.blob
FROM unnest(%(idxs)b::int[], %(channels)b::text[], %(types)b::text[], %(blobs)b::bytea[])
     AS x(idx, channel, type, blob)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob;

-- name: insert_write_arrays
-- put_writes of ordinary channels: the first write of a (task, idx) stays.
INSERT INTO {writes}
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s,
       x.idx, x.channel, x.type, x.blob
FROM unnest(%(idxs)b::int[], %(channels)b::text[], %(types)b::text[], %(blobs)b::bytea[])
     AS x(idx, channel, type, blob)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
DO NOTHING;

-- name: upsert_write_rows
-- upsert_write_arrays for a few writes, sent as VALUES rows (`{rows}`, each a `write_row`).
INSERT INTO {writes}
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
VALUES {rows}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob;

-- name: insert_write_rows
-- insert_write_arrays for a few writes, sent as VALUES rows (`{rows}`, each a `write_row`).
INSERT INTO {writes}
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
VALUES {rows}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
DO NOTHING;

-- name: write_row
-- One row of the *_write_rows statements; the parts are that row's numbered parameters.
(%(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s,
 {idx}::int, {channel}, {type}, {blob});

-- name: put_delta
-- `put` in delta storage: the new blobs (some of them deltas, with their base version in
-- `bases`) and the checkpoint, in one statement. A delta is stored only if its base row
-- exists, and the blobs and the checkpoint only if every base exists, so no checkpoint ever
-- names a delta without its base. Returns one row when the checkpoint was stored; none
-- when a base was missing (deleted, or rolled back with a caller's transaction): the saver
-- then stores those values whole (put_with_blob_arrays).
WITH x AS (
    SELECT * FROM unnest(%(channels)b::text[], %(versions)b::text[], %(types)b::text[],
                         %(blobs)b::bytea[], %(bases)b::text[])
         AS x(channel, version, type, blob, base)
), ok AS (
    SELECT x.channel, x.version, x.type, x.blob FROM x
    WHERE x.base IS NULL OR EXISTS (
        SELECT 1 FROM {blobs} AS b
        WHERE b.thread_id = %(thread_id)s AND b.checkpoint_ns = %(checkpoint_ns)s
          AND b.channel = x.channel AND b.version = x.base)
), new_blobs AS (
    INSERT INTO {blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, ok.channel, ok.version, ok.type, ok.blob FROM ok
    WHERE (SELECT count(*) FROM ok) = cardinality(%(channels)b::text[])
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
INSERT INTO {checkpoints}
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT %(thread_id)s::text, %(checkpoint_ns)s::text, %(checkpoint_id)s::text,
       %(parent_checkpoint_id)s::text, %(checkpoint)s::jsonb, %(metadata)s::jsonb
WHERE (SELECT count(*) FROM ok) = cardinality(%(channels)b::text[])
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
RETURNING 1;
