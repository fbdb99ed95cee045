-- Whole-thread and bulk operations: delete_thread, copy_thread, delete_for_runs and prune
-- (see checkpoint_pg/_core.py and checkpoint_pg/_prune.py).

-- name: delete_thread
WITH gone_writes AS (
    DELETE FROM {writes} WHERE thread_id = %(thread_id)s
), gone_blobs AS (
    DELETE FROM {blobs} WHERE thread_id = %(thread_id)s
)
DELETE FROM {checkpoints} WHERE thread_id = %(thread_id)s;

-- name: copy_thread
-- Copies every checkpoint (the whole parent chain), blob and write of the source thread.
-- Rows already at the target are left as they are, so a retried copy is harmless.
WITH copied_blobs AS (
    INSERT INTO {blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(target)s, checkpoint_ns, channel, version, type, blob
    FROM {blobs} WHERE thread_id = %(source)s
    ON CONFLICT DO NOTHING
), copied_writes AS (
    INSERT INTO {writes}
        (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
    SELECT %(target)s, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob
    FROM {writes} WHERE thread_id = %(source)s
    ON CONFLICT DO NOTHING
)
INSERT INTO {checkpoints}
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
SELECT %(target)s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM {checkpoints} WHERE thread_id = %(source)s
ON CONFLICT DO NOTHING;

-- name: sealed_thread_checkpoints
-- copy_thread with encryption (checkpoint_pg/_sealed_rows.py), first step: the source's
-- checkpoints, read before their blobs and writes so that every blob they need is read too.
SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM {checkpoints} WHERE thread_id = %(source)s;

-- name: sealed_thread_blobs
-- copy_thread with encryption: the source's blobs, to be sealed again for the target.
SELECT checkpoint_ns, channel, version, type, blob FROM {blobs} WHERE thread_id = %(source)s;

-- name: sealed_thread_writes
-- copy_thread with encryption: the source's writes, to be sealed again for the target.
SELECT checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob
FROM {writes} WHERE thread_id = %(source)s;

-- name: copy_sealed_thread
-- copy_thread with encryption, last step: the rows read, each value sealed again for the
-- target thread. Rows already at the target are left as they are, as copy_thread does.
WITH copied_blobs AS (
    INSERT INTO {blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(target)s, x.ns, x.channel, x.version, x.type, x.blob
    FROM unnest(%(b_ns)s::text[], %(b_channels)s::text[], %(b_versions)s::text[],
                %(b_types)s::text[], %(b_blobs)s::bytea[]) AS x(ns, channel, version, type, blob)
    ON CONFLICT DO NOTHING
), copied_writes AS (
    INSERT INTO {writes}
        (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
    SELECT %(target)s, x.ns, x.id, x.task_id, x.task_path, x.idx, x.channel, x.type, x.blob
    FROM unnest(%(w_ns)s::text[], %(w_ids)s::text[], %(w_tasks)s::text[], %(w_paths)s::text[],
                %(w_idxs)s::int[], %(w_channels)s::text[], %(w_types)s::text[],
                %(w_blobs)s::bytea[])
         AS x(ns, id, task_id, task_path, idx, channel, type, blob)
    ON CONFLICT DO NOTHING
)
INSERT INTO {checkpoints}
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
SELECT %(target)s, x.ns, x.id, x.parent, x.type, x.checkpoint, x.metadata
FROM unnest(%(c_ns)s::text[], %(c_ids)s::text[], %(c_parents)s::text[], %(c_types)s::text[],
            %(c_checkpoints)s::jsonb[], %(c_metadata)s::jsonb[])
     AS x(ns, id, parent, type, checkpoint, metadata)
ON CONFLICT DO NOTHING;

-- name: writes_and_freed_of_gone
-- A fragment of CTEs: given a CTE `gone` of deleted checkpoints (thread_id, checkpoint_ns,
-- checkpoint_id, versions), delete their writes, and list the (channel, version) blobs they
-- referred to as `freed`. `{w_scope}` restricts the writes to the statement's threads, if
-- it has a list of them (see thread_scope below).
gone_writes AS (
    DELETE FROM {writes} AS w
    USING gone
    WHERE w.thread_id = gone.thread_id {w_scope} AND w.checkpoint_ns = gone.checkpoint_ns
      AND w.checkpoint_id = gone.checkpoint_id
    RETURNING 1
), freed AS (
    SELECT DISTINCT gone.thread_id, gone.checkpoint_ns, v.key AS channel, v.value AS version
    FROM gone CROSS JOIN LATERAL jsonb_each_text(gone.versions) AS v
);

-- name: thread_scope
-- `AND <alias>.thread_id = ANY(thread_ids)`: a statement over a list of threads names them
-- for every table it reads or writes. Citus routes a statement to one shard only when every
-- distributed table in it is filtered by the same thread (a join on thread_id is not
-- enough), so on Citus these statements run one thread at a time, each on one shard; on a
-- single server the filter is redundant and free (the primary keys start with thread_id).
AND {alias}.thread_id = ANY(%(thread_ids)s::text[])

-- name: based_on_step
-- A fragment: the recursive step of a `based_on` CTE (delta storage, checkpoint_pg/_delta.py):
-- a base found so far that is itself a delta adds its own base. `{d_scope}` as thread_scope.
SELECT n.thread_id, n.checkpoint_ns, n.channel, substr(d.type, 11)
FROM based_on AS n
JOIN {blobs} AS d
  ON d.thread_id = n.thread_id {d_scope} AND d.checkpoint_ns = n.checkpoint_ns
 AND d.channel = n.channel AND d.version = n.version
WHERE left(d.type, 10) = 'cpg-delta:';

-- name: delete_for_runs
-- The checkpoints a run created go, with their writes; a blob goes when no checkpoint that
-- stays refers to its (channel, version) any longer, and no delta that stays is built on it
-- (delta storage, checkpoint_pg/_delta.py: `based_on` holds the bases, direct or not, of the
-- delta rows of the freed channels that stay). A single server runs it over every thread at
-- once; Citus refuses that ("complex joins are only supported when all distributed tables
-- are co-located and joined on their distribution columns"), so there it runs per thread
-- found by run_threads, each scope part a thread_scope.
WITH RECURSIVE gone AS (
    DELETE FROM {checkpoints} AS g
    WHERE g.metadata @> ANY(%(run_filters)s::jsonb[]) {g_scope}
    RETURNING thread_id, checkpoint_ns, checkpoint_id, checkpoint -> 'channel_versions' AS versions
), {writes_and_freed_of_gone}, doomed AS (
    SELECT freed.* FROM freed
    WHERE NOT EXISTS (
        SELECT 1 FROM {checkpoints} AS k
        WHERE k.thread_id = freed.thread_id {k_scope} AND k.checkpoint_ns = freed.checkpoint_ns
          AND k.checkpoint -> 'channel_versions' ->> freed.channel = freed.version
          AND (k.metadata ->> 'run_id' IS NULL
               OR k.metadata ->> 'run_id' <> ALL(%(run_ids)s::text[]))
    )
), based_on (thread_id, checkpoint_ns, channel, version) AS (
    SELECT d.thread_id, d.checkpoint_ns, d.channel, substr(d.type, 11)
    FROM (SELECT DISTINCT thread_id, checkpoint_ns, channel FROM freed) AS f
    JOIN {blobs} AS d
      ON d.thread_id = f.thread_id {d_scope} AND d.checkpoint_ns = f.checkpoint_ns
     AND d.channel = f.channel
    WHERE left(d.type, 10) = 'cpg-delta:'
      AND NOT EXISTS (
          SELECT 1 FROM doomed
          WHERE doomed.thread_id = d.thread_id AND doomed.checkpoint_ns = d.checkpoint_ns
            AND doomed.channel = d.channel AND doomed.version = d.version)
    UNION
    {based_on_step}
)
DELETE FROM {blobs} AS b
USING doomed
WHERE b.thread_id = doomed.thread_id {b_scope} AND b.checkpoint_ns = doomed.checkpoint_ns
  AND b.channel = doomed.channel AND b.version = doomed.version
  AND NOT EXISTS (
      SELECT 1 FROM based_on AS n
      WHERE n.thread_id = doomed.thread_id AND n.checkpoint_ns = doomed.checkpoint_ns
        AND n.channel = doomed.channel AND n.version = doomed.version);

-- name: run_threads
-- delete_for_runs on Citus, first step: the threads holding checkpoints of the runs (a
-- query on every shard).
SELECT DISTINCT thread_id FROM {checkpoints}
WHERE metadata @> ANY(%(run_filters)s::jsonb[]);

-- name: prune_delete
-- prune(strategy="delete"): the listed threads go whole.
WITH gone_writes AS (
    DELETE FROM {writes} WHERE thread_id = ANY(%(thread_ids)s::text[])
), gone_blobs AS (
    DELETE FROM {blobs} WHERE thread_id = ANY(%(thread_ids)s::text[])
)
DELETE FROM {checkpoints} WHERE thread_id = ANY(%(thread_ids)s::text[]);

-- name: prune_heads
-- prune(strategy="keep_latest"), step 1. Per thread and namespace: the `keep` latest
-- checkpoints (newest first; keep_latest is 1) and what deciding what to keep needs, for
-- each: the parent that holds its pending sends when it predates format v4, the delta
-- channels it rebuilds from ancestors, and the root checkpoint a subgraph call started from.
SELECT h.thread_id, h.checkpoint_ns, h.checkpoint_id,
       CASE WHEN (c.checkpoint ->> 'v')::int < 4 AND EXISTS (
           SELECT 1 FROM {writes} AS w
           WHERE w.thread_id = h.thread_id AND w.thread_id = ANY(%(thread_ids)s::text[])
             AND w.checkpoint_ns = h.checkpoint_ns
             AND w.checkpoint_id = c.parent_checkpoint_id AND w.channel = %(tasks)s
       ) THEN c.parent_checkpoint_id END AS sends_parent,
       ARRAY(
           SELECT jsonb_object_keys(
               CASE WHEN jsonb_typeof(c.metadata -> 'counters_since_delta_snapshot') = 'object'
                    THEN c.metadata -> 'counters_since_delta_snapshot' ELSE '{}' END)
           UNION
           SELECT v.key FROM jsonb_each(c.checkpoint -> 'channel_versions') AS v
           WHERE c.metadata ? 'delta_writes_versioned'
             AND NOT coalesce(c.checkpoint -> 'channel_values', '{}') ? v.key
       ) AS delta_channels,
       c.metadata -> 'parents' ->> '' AS root,
       EXISTS (
           SELECT 1 FROM {checkpoints} AS r
           WHERE r.thread_id = h.thread_id AND r.thread_id = ANY(%(thread_ids)s::text[])
             AND r.checkpoint_ns = ''
             AND r.checkpoint_id = c.metadata -> 'parents' ->> ''
       ) AS root_saved
FROM (
    SELECT r.thread_id, r.checkpoint_ns, r.checkpoint_id, r.rank
    FROM (
        SELECT thread_id, checkpoint_ns, checkpoint_id,
               row_number() OVER (PARTITION BY thread_id, checkpoint_ns
                                  ORDER BY checkpoint_id DESC) AS rank
        FROM {checkpoints}
        WHERE thread_id = ANY(%(thread_ids)s::text[])
    ) AS r
    WHERE r.rank <= %(keep)s
) AS h
JOIN {checkpoints} AS c
  ON c.thread_id = h.thread_id AND c.checkpoint_ns = h.checkpoint_ns
 AND c.checkpoint_id = h.checkpoint_id
WHERE c.thread_id = ANY(%(thread_ids)s::text[])
ORDER BY h.thread_id, h.checkpoint_ns, h.rank;

-- name: prune_delta_chains
-- keep_latest, step 2: walks each head's parent chain until every delta channel it needs has
-- met a stored value (a snapshot, or a plain value from before the channel became a
-- DeltaChannel). `{has_value}` is history.sql's has_value.
WITH RECURSIVE chain (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, remaining)
AS (
    SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, s.channels
    FROM jsonb_to_recordset(%(seeds)s::jsonb)
         AS s(thread_id text, checkpoint_ns text, head text, channels text[])
    JOIN {checkpoints} AS c
      ON c.thread_id = s.thread_id AND c.checkpoint_ns = s.checkpoint_ns
     AND c.checkpoint_id = s.head AND c.thread_id = ANY(%(thread_ids)s::text[])
    UNION ALL
    SELECT p.thread_id, p.checkpoint_ns, p.checkpoint_id, p.parent_checkpoint_id,
           ARRAY(SELECT ch FROM unnest(chain.remaining) AS ch
                 WHERE NOT {has_value})
    FROM chain
    JOIN {checkpoints} AS p
      ON p.thread_id = chain.thread_id AND p.checkpoint_ns = chain.checkpoint_ns
     AND p.checkpoint_id = chain.parent_checkpoint_id AND p.thread_id = ANY(%(thread_ids)s::text[])
    WHERE cardinality(chain.remaining) > 0
)
SELECT DISTINCT thread_id, checkpoint_ns, checkpoint_id FROM chain;

-- name: prune_apply
-- keep_latest, step 3. Deletes, in one statement, every checkpoint of the listed namespaces
-- that is older than the namespace's bound (or equal to it, for a finished subgraph call) and
-- not kept; their writes; the blobs no kept checkpoint refers to; and unlinks kept
-- checkpoints from deleted parents. Checkpoints saved after the heads were read are newer
-- than every bound: untouched. Returns how many checkpoints, threads, writes and blobs it
-- deleted.
WITH RECURSIVE bounds AS (
    SELECT * FROM unnest(%(b_threads)s::text[], %(b_ns)s::text[], %(b_ids)s::text[],
                         %(b_inclusive)s::bool[])
         AS b(thread_id, checkpoint_ns, bound, inclusive)
), kept AS (
    SELECT * FROM unnest(%(k_threads)s::text[], %(k_ns)s::text[], %(k_ids)s::text[])
         AS k(thread_id, checkpoint_ns, checkpoint_id)
), gone AS (
    DELETE FROM {checkpoints} AS c
    USING bounds AS b
    WHERE c.thread_id = b.thread_id AND c.thread_id = ANY(%(thread_ids)s::text[])
      AND c.checkpoint_ns = b.checkpoint_ns
      AND (c.checkpoint_id < b.bound OR (b.inclusive AND c.checkpoint_id = b.bound))
      AND NOT EXISTS (
          SELECT 1 FROM kept AS k
          WHERE k.thread_id = c.thread_id AND k.checkpoint_ns = c.checkpoint_ns
            AND k.checkpoint_id = c.checkpoint_id)
    RETURNING c.thread_id, c.checkpoint_ns, c.checkpoint_id,
              c.checkpoint -> 'channel_versions' AS versions
), {writes_and_freed_of_gone}, still_used AS (
    SELECT DISTINCT c.thread_id, c.checkpoint_ns, v.key AS channel, v.value AS version
    FROM {checkpoints} AS c
    JOIN bounds AS b ON b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns
    CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') AS v
    WHERE c.thread_id = ANY(%(thread_ids)s::text[])
      AND (NOT (c.checkpoint_id < b.bound OR (b.inclusive AND c.checkpoint_id = b.bound))
           OR EXISTS (
              SELECT 1 FROM kept AS k
              WHERE k.thread_id = c.thread_id AND k.checkpoint_ns = c.checkpoint_ns
                AND k.checkpoint_id = c.checkpoint_id))
), based_on (thread_id, checkpoint_ns, channel, version) AS (
    -- Delta storage (checkpoint_pg/_delta.py): the bases, direct or not, of the deltas
    -- still in use stay too.
    SELECT u.thread_id, u.checkpoint_ns, u.channel, substr(d.type, 11)
    FROM still_used AS u
    JOIN {blobs} AS d
      ON d.thread_id = u.thread_id {d_scope} AND d.checkpoint_ns = u.checkpoint_ns
     AND d.channel = u.channel AND d.version = u.version
    WHERE left(d.type, 10) = 'cpg-delta:'
    UNION
    {based_on_step}
), gone_blobs AS (
    DELETE FROM {blobs} AS bl
    USING freed AS f
    WHERE bl.thread_id = f.thread_id AND bl.thread_id = ANY(%(thread_ids)s::text[])
      AND bl.checkpoint_ns = f.checkpoint_ns
      AND bl.channel = f.channel AND bl.version = f.version
      AND NOT EXISTS (
          SELECT 1 FROM still_used AS u
          WHERE u.thread_id = f.thread_id AND u.checkpoint_ns = f.checkpoint_ns
            AND u.channel = f.channel AND u.version = f.version)
      AND NOT EXISTS (
          SELECT 1 FROM based_on AS n
          WHERE n.thread_id = f.thread_id AND n.checkpoint_ns = f.checkpoint_ns
            AND n.channel = f.channel AND n.version = f.version)
    RETURNING 1
)
, unlinked AS (
    UPDATE {checkpoints} AS c
    SET parent_checkpoint_id = NULL
    FROM kept AS k
    WHERE c.thread_id = k.thread_id AND c.thread_id = ANY(%(thread_ids)s::text[])
      AND c.checkpoint_ns = k.checkpoint_ns
      AND c.checkpoint_id = k.checkpoint_id
      AND c.parent_checkpoint_id IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM kept AS k2
          WHERE k2.thread_id = c.thread_id AND k2.checkpoint_ns = c.checkpoint_ns
            AND k2.checkpoint_id = c.parent_checkpoint_id)
)
SELECT (SELECT count(*) FROM gone), (SELECT count(DISTINCT thread_id) FROM gone),
       (SELECT count(*) FROM gone_writes), (SELECT count(*) FROM gone_blobs);
