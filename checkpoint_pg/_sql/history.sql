-- get_delta_channel_history (see checkpoint_pg/_core.py), and the test it shares with prune.

-- name: has_value
-- A fragment: whether checkpoint `p` stores a value for channel `ch`: inline in its JSONB, or
-- as a non-empty blob under the version it names (the official format keeps non-primitive
-- values only there). A DeltaChannel snapshot is both: a `true` marker inline and the blob.
-- `{thread}` is the thread_id parameter or `p.thread_id` (see hot_path.sql's select_tuple).
(coalesce(p.checkpoint -> 'channel_values', '{}') ? ch
    OR EXISTS (
        SELECT 1 FROM {blobs} AS hb
        WHERE hb.thread_id = {thread} AND hb.checkpoint_ns = p.checkpoint_ns
          AND hb.channel = ch AND hb.version = p.checkpoint -> 'channel_versions' ->> ch
          AND hb.type <> 'empty'));

-- name: delta_history
-- get_delta_channel_history in one statement: walk the target's parent chain while any
-- requested channel still lacks a stored value. A row's writes count for the channels still
-- wanted when the walk reached it (`incoming`); the first ancestor with a value seeds it.
WITH RECURSIVE chain (checkpoint_id, parent_checkpoint_id, depth, incoming, remaining) AS (
    SELECT t.checkpoint_id, t.parent_checkpoint_id, 0, '{}'::text[], %(channels)s::text[]
    FROM {checkpoints} AS t
    WHERE t.thread_id = %(thread_id)s AND t.checkpoint_ns = %(checkpoint_ns)s
      AND t.checkpoint_id = coalesce(%(checkpoint_id)s::text, (
          SELECT l.checkpoint_id FROM {checkpoints} AS l
          WHERE l.thread_id = %(thread_id)s AND l.checkpoint_ns = %(checkpoint_ns)s
          ORDER BY l.checkpoint_id DESC LIMIT 1))
    UNION ALL
    SELECT p.checkpoint_id, p.parent_checkpoint_id, chain.depth + 1, chain.remaining,
           ARRAY(SELECT ch FROM unnest(chain.remaining) AS ch WHERE NOT {has_value})
    FROM chain
    JOIN {checkpoints} AS p
      ON p.thread_id = %(thread_id)s AND p.checkpoint_ns = %(checkpoint_ns)s
     AND p.checkpoint_id = chain.parent_checkpoint_id
    WHERE cardinality(chain.remaining) > 0
)
SELECT 'w' AS kind, chain.depth, w.channel, w.type, w.blob, w.task_id, w.task_path, w.idx,
       NULL::jsonb AS inline
FROM chain
JOIN {writes} AS w
  ON w.thread_id = %(thread_id)s AND w.checkpoint_ns = %(checkpoint_ns)s
 AND w.checkpoint_id = chain.checkpoint_id AND w.channel = ANY(chain.incoming)
UNION ALL
SELECT 's', chain.depth, ch, bl.type, bl.blob, NULL, NULL, NULL,
       c.checkpoint -> 'channel_values' -> ch
FROM chain
JOIN {checkpoints} AS c
  ON c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
 AND c.checkpoint_id = chain.checkpoint_id
CROSS JOIN LATERAL unnest(chain.incoming) AS ch
LEFT JOIN {blobs} AS bl
  ON bl.thread_id = %(thread_id)s AND bl.checkpoint_ns = c.checkpoint_ns AND bl.channel = ch
 AND bl.version = c.checkpoint -> 'channel_versions' ->> ch AND bl.type <> 'empty'
WHERE NOT (ch = ANY(chain.remaining));
