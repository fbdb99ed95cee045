-- list_threads and the retention sweep (see checkpoint_pg/_retention.py).

-- name: checkpoint_ts
-- A fragment: when checkpoint `{row}` was saved, as the server reads it: its `ts` (ISO 8601
-- with an offset, as LangGraph writes it), or NULL when it has none or another shape (the
-- CASE keeps the cast from ever failing on such a value). NULL counts as recent: never
-- deleted for idleness.
CASE WHEN {row}.checkpoint ->> 'ts' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
 THEN ({row}.checkpoint ->> 'ts')::timestamptz END;

-- name: thread_ids
-- A fragment: the CTE `ids`, distinct thread ids in order from a cursor, one index probe each
-- (a "skip scan" over the primary key): never a scan or sort of the whole table. Evaluated
-- lazily: a LIMIT above stops it. `{cmp}` is `>=` for the first page ('' sorts first) and
-- `>` after a cursor.
WITH RECURSIVE ids (thread_id, n) AS (
    SELECT (SELECT min(c.thread_id) FROM {checkpoints} AS c WHERE c.thread_id {cmp} %(after)s), 1
    UNION ALL
    SELECT (SELECT min(c.thread_id) FROM {checkpoints} AS c WHERE c.thread_id > ids.thread_id),
           ids.n + 1
    FROM ids
    WHERE ids.thread_id IS NOT NULL AND ids.n < %(scan)s
);

-- name: head_of
-- A fragment: thread `{thread}`'s latest checkpoint, the root namespace's newest, else (a
-- thread with subgraph checkpoints only) its last namespace's newest. Each branch is one
-- backward index probe. `{at}` is checkpoint_ts of row `h`.
(
    (SELECT h.checkpoint_id, h.metadata, h.checkpoint ->> 'ts' AS ts, {at} AS at
     FROM {checkpoints} AS h
     WHERE h.thread_id = {thread} AND h.checkpoint_ns = ''
     ORDER BY h.checkpoint_id DESC LIMIT 1)
    UNION ALL
    (SELECT h.checkpoint_id, h.metadata, h.checkpoint ->> 'ts', {at}
     FROM {checkpoints} AS h
     WHERE h.thread_id = {thread}
     ORDER BY h.checkpoint_ns DESC, h.checkpoint_id DESC LIMIT 1)
    LIMIT 1
);

-- name: head_is_idle
-- A fragment: whether the `head` (a head_of row) was saved longer than `idle_for` ago.
coalesce(head.at < now() - %(idle_for)s::interval, false);

-- name: thread_stats
-- A fragment ending list_threads: per thread of the CTE `page`, its checkpoints (all
-- namespaces) and stored bytes (pg_column_size of checkpoint + metadata, blobs and writes),
-- each an index range scan on the thread's prefix. `{thread}` is `p.thread_id`, or the
-- thread_id parameter in the one-thread form Citus routes (see thread_candidates).
SELECT p.thread_id, p.checkpoint_id, p.ts, p.metadata, cs.n,
       cs.bytes + coalesce(bs.bytes, 0) + coalesce(ws.bytes, 0)
FROM page AS p
CROSS JOIN LATERAL (
    SELECT count(*) AS n,
           coalesce(sum(pg_column_size(c.checkpoint) + pg_column_size(c.metadata)), 0) AS bytes
    FROM {checkpoints} AS c WHERE c.thread_id = {thread}
) AS cs
CROSS JOIN LATERAL (
    SELECT sum(pg_column_size(b.blob)) AS bytes FROM {blobs} AS b WHERE b.thread_id = {thread}
) AS bs
CROSS JOIN LATERAL (
    SELECT sum(pg_column_size(w.blob)) AS bytes FROM {writes} AS w WHERE w.thread_id = {thread}
) AS ws
ORDER BY p.thread_id;

-- name: list_threads_walk
-- A page of threads walked from the cursor, filtered on their latest checkpoint
-- (`{conditions}`: nothing, or AND clauses).
{thread_ids}, page AS MATERIALIZED (
    SELECT ids.thread_id, head.checkpoint_id, head.ts, head.metadata
    FROM ids CROSS JOIN LATERAL {head} AS head
    WHERE ids.thread_id IS NOT NULL {conditions}
    LIMIT %(limit)s
)
{thread_stats};

-- name: list_threads_by_metadata
-- With a metadata filter: candidate threads come from root checkpoints matching it, through
-- the GIN index `checkpoints_metadata_idx`; then each one's latest checkpoint must match too
-- (`{conditions}`: AND clauses).
WITH candidates AS (
    SELECT DISTINCT c.thread_id FROM {checkpoints} AS c
    WHERE c.metadata @> %(metadata)s AND c.checkpoint_ns = '' AND c.thread_id {cmp} %(after)s
), page AS MATERIALIZED (
    SELECT cand.thread_id, head.checkpoint_id, head.ts, head.metadata
    FROM candidates AS cand CROSS JOIN LATERAL {head} AS head
    WHERE TRUE {conditions}
    ORDER BY cand.thread_id
    LIMIT %(limit)s
)
{thread_stats};

-- name: thread_candidates
-- list_threads on Citus, step 1: the next thread ids from the cursor, from every shard (a
-- DISTINCT … ORDER BY … LIMIT each shard answers from its primary key). Citus plans neither
-- the recursive skip scan of thread_ids ("recursive CTEs are only supported when they
-- contain a filter on the distribution column") nor a lateral join from its result to the
-- checkpoints; step 2 is the walk statement for one thread at a time (`{thread}` the
-- thread_id parameter, so it is routed to one shard), all of a page's sent in one pipeline.
-- `{candidate_filter}`: nothing, or the metadata filter on root checkpoints.
SELECT DISTINCT c.thread_id FROM {checkpoints} AS c
WHERE c.thread_id {cmp} %(after)s {candidate_filter}
ORDER BY c.thread_id
LIMIT %(scan)s;

-- name: one_thread_id
-- The thread_ids CTE of the one-thread walk (see thread_candidates).
WITH ids (thread_id, n) AS (SELECT %(thread_id)s::text, 1);

-- name: head_matches_metadata
-- A fragment: the `head` (a head_of row) matches the metadata filter.
head.metadata @> %(metadata)s;

-- name: retention_pick
-- One retention batch, step 1: the next `scan` threads from the cursor, each one's latest
-- checkpoint, whether it is idle (by that checkpoint's ts against the server clock) and
-- whether it has anything for keep_latest to prune (more than `keep` root checkpoints, or
-- subgraph namespaces). The threads with work are locked for this transaction with a
-- non-blocking advisory lock: a thread another sweeper holds comes back `locked = false` and
-- is left to it. `{thread}` is `ids.thread_id`; on Citus this runs for one thread at a time
-- (`{thread_ids}` one_thread_id, `{thread}` the thread_id parameter), after step 1 of
-- list_threads' Citus form found the batch's threads (see thread_candidates).
{thread_ids}, scanned AS MATERIALIZED (
    SELECT ids.thread_id,
           {head_is_idle} AS idle,
           CASE WHEN %(keep)s::int IS NULL THEN false ELSE (
               EXISTS (SELECT 1 FROM {checkpoints} AS p
                       WHERE p.thread_id = {thread} AND p.checkpoint_ns = ''
                       ORDER BY p.checkpoint_id DESC OFFSET %(keep)s LIMIT 1)
               OR EXISTS (SELECT 1 FROM {checkpoints} AS p
                          WHERE p.thread_id = {thread} AND p.checkpoint_ns > '')
           ) END AS prunable
    FROM ids CROSS JOIN LATERAL {head} AS head
    WHERE ids.thread_id IS NOT NULL
)
SELECT s.thread_id, s.idle, s.prunable,
       CASE WHEN s.idle OR s.prunable
            THEN pg_try_advisory_xact_lock(hashtextextended(%(lock_prefix)s || s.thread_id, 0))
            ELSE false END AS locked
FROM scanned AS s
ORDER BY s.thread_id;

-- name: lock_threads
-- The pick's locks on Citus: retention_pick runs on the thread's worker there, so its lock
-- would live on that worker; sweepers (and anyone else) meet on the coordinator instead,
-- where this statement, naming no table, runs. Same keys as retention_pick's.
SELECT pg_try_advisory_xact_lock(hashtextextended(%(lock_prefix)s || t.thread_id, 0))
FROM unnest(%(threads)s::text[]) WITH ORDINALITY AS t(thread_id, n)
ORDER BY t.n;

-- name: retention_delete_idle
-- Step 2: delete the locked idle threads whole, re-checking idleness in this statement's own
-- snapshot over every checkpoint of every namespace: a thread that got a checkpoint since the
-- pick (or has any recent or undated one) stays. Returns what it deleted, per thread.
-- Every table is also filtered by the thread list itself (see threads.sql, thread_scope): on
-- Citus it runs for one thread at a time.
-- `{k_at}` is checkpoint_ts of row `k`.
WITH idle AS (
    SELECT t.thread_id FROM unnest(%(threads)s::text[]) AS t(thread_id)
    WHERE NOT EXISTS (
        SELECT 1 FROM {checkpoints} AS k
        WHERE k.thread_id = t.thread_id AND k.thread_id = ANY(%(threads)s::text[])
          AND NOT coalesce({k_at} < now() - %(idle_for)s::interval, false))
), gone AS (
    DELETE FROM {checkpoints} AS c USING idle
    WHERE c.thread_id = idle.thread_id AND c.thread_id = ANY(%(threads)s::text[])
    RETURNING c.thread_id
), gone_writes AS (
    DELETE FROM {writes} AS w USING idle
    WHERE w.thread_id = idle.thread_id AND w.thread_id = ANY(%(threads)s::text[]) RETURNING 1
), gone_blobs AS (
    DELETE FROM {blobs} AS b USING idle
    WHERE b.thread_id = idle.thread_id AND b.thread_id = ANY(%(threads)s::text[]) RETURNING 1
), per_thread AS (
    SELECT thread_id, count(*) AS n FROM gone GROUP BY thread_id
)
SELECT (SELECT array_agg(thread_id ORDER BY thread_id) FROM per_thread),
       (SELECT array_agg(n ORDER BY thread_id) FROM per_thread),
       (SELECT count(*) FROM gone_writes), (SELECT count(*) FROM gone_blobs);

-- name: retention_verify
-- Step 3, in a new snapshot: which of the deleted threads have a checkpoint again (a put that
-- committed while step 2 ran). The batch then rolls back to before step 2 and leaves them.
SELECT t.thread_id FROM unnest(%(threads)s::text[]) AS t(thread_id)
WHERE EXISTS (SELECT 1 FROM {checkpoints} AS k
              WHERE k.thread_id = t.thread_id AND k.thread_id = ANY(%(threads)s::text[]));

-- name: savepoint
SAVEPOINT checkpoint_pg_retention;

-- name: rollback_to_savepoint
ROLLBACK TO SAVEPOINT checkpoint_pg_retention;

-- name: dry_run_savepoint
-- A dry run runs the batch's real statements after this savepoint, counts, and rolls back.
SAVEPOINT checkpoint_pg_dry_run;

-- name: dry_run_rollback
ROLLBACK TO SAVEPOINT checkpoint_pg_dry_run;
