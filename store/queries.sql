-- The store's statements and the pieces its batch statements are composed of.
-- Parts: {store} and {vectors} are the schema-qualified tables. A batch reads with one UNION
-- ALL of branches, several of the same kind: a branch's values are parts too ({op}, {limit},
-- ...), named placeholders unique to the branch; other values are %(name)s parameters.
-- Every alias `s` is a row of the store table.

-- name: live
-- The item is not expired (swept or not).
(s.expires_at IS NULL OR s.expires_at > now());

-- name: gets
-- Every get of a batch: one branch, its keys from {source} (get_rows or get_arrays). Its
-- rows ask for no refresh: refresh_gets moves the gets' expiries by their own keys.
SELECT w.op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
       NULL::float8 AS score, false AS refresh, w.op::bigint AS rank
FROM {source} AS w(op, prefix, key, refresh)
JOIN {store} AS s ON s.prefix = w.prefix AND s.key = w.key
WHERE (s.expires_at IS NULL OR s.expires_at > now());

-- name: get_rows
-- A few gets as VALUES rows ({rows}: get_row each), not arrays to unnest: the cheaper
-- statement for a few (benchmarks/RESULTS.md, "Design measurements").
(VALUES {rows});

-- name: get_row
({op}::int, {prefix}::text, {key}::text, {refresh}::bool);

-- name: get_arrays
unnest(%(get_ops)b::int[], %(get_prefixes)b::text[], %(get_keys)b::text[], %(get_refresh)b::bool[]);

-- name: under_prefix
-- The namespace prefix itself or below it, served by the primary key and prefix index
-- ({pattern}: the prefix, LIKE-escaped, then `.%`).
(s.prefix = {prefix} OR s.prefix LIKE {pattern} ESCAPE '\');

-- name: search
-- One search without a query vector. The page is cut before it is ranked: on Citus the
-- ORDER BY ... LIMIT then runs on every shard (each sends its first limit + offset rows), and
-- only the page is ranked on the coordinator.
SELECT {op}::int AS op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
       NULL::float8 AS score, {refresh}::bool AS refresh,
       row_number() OVER (ORDER BY s.updated_at DESC, s.prefix, s.key) AS rank
FROM (
    SELECT s.prefix, s.key, s.value, s.created_at, s.updated_at
    FROM {store} AS s
    WHERE {namespace} AND {filter} AND (s.expires_at IS NULL OR s.expires_at > now())
    ORDER BY s.updated_at DESC, s.prefix, s.key
    LIMIT {limit} OFFSET {offset}
) AS s;

-- name: vector_search
-- One search by a query vector: the items nearest to it (nearest_items), paged.
SELECT {op}::int AS op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
       {score} AS score, {refresh}::bool AS refresh,
       row_number() OVER (ORDER BY best.dist, s.prefix, s.key) AS rank
FROM (
    {nearest_items}
    LIMIT {limit} OFFSET {offset}
) AS best
JOIN {store} AS s ON s.prefix = best.prefix AND s.key = best.key;

-- name: text_search
-- One search by text: the items whose {document} (the text column, GIN-indexed) matches the
-- query, best ts_rank first. {tsquery}: text_query or text_query_any.
SELECT {op}::int AS op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
       s.score, {refresh}::bool AS refresh,
       row_number() OVER (ORDER BY s.score DESC, s.prefix, s.key) AS rank
FROM (
    SELECT s.prefix, s.key, s.value, s.created_at, s.updated_at,
           ts_rank({document}, {tsquery})::float8 AS score
    FROM {store} AS s
    WHERE {document} @@ {tsquery} AND {namespace} AND {filter}
      AND (s.expires_at IS NULL OR s.expires_at > now())
    ORDER BY score DESC, s.prefix, s.key
    LIMIT {limit} OFFSET {offset}
) AS s;

-- name: text_query
-- User text as a query that cannot fail to parse (quotes, OR, -word as a web search has them):
-- an item matches every word (text match "all", opt-in).
websearch_to_tsquery({config}, {text});

-- name: text_query_any
-- User text as a query matching any of its words (text match "any", the default):
-- natural-language queries find what shares some of their words. plainto_tsquery joins
-- the normalized words with & and nothing else (no user operator survives), so & becomes |.
replace(plainto_tsquery({config}, {text})::text, ' & ', ' | ')::tsquery;

-- name: hybrid_search
-- One search by text and vector: reciprocal rank fusion of the best {depth} items of the
-- text search and of the vector search (each with the filter), an item scoring
-- weight / (k + place) from each list it is in (place: 1-based).
SELECT {op}::int AS op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
       fused.score, {refresh}::bool AS refresh,
       row_number() OVER (ORDER BY fused.score DESC, s.prefix, s.key) AS rank
FROM (
    SELECT r.prefix, r.key, sum(r.weight / ({k}::float8 + r.place))::float8 AS score
    FROM (
        SELECT t.prefix, t.key, {text_weight}::float8 AS weight,
               row_number() OVER (ORDER BY t.rank DESC, t.prefix, t.key) AS place
        FROM (
            SELECT s.prefix, s.key, ts_rank({document}, {tsquery}) AS rank
            FROM {store} AS s
            WHERE {document} @@ {tsquery} AND {namespace} AND {filter}
              AND (s.expires_at IS NULL OR s.expires_at > now())
            ORDER BY rank DESC, s.prefix, s.key
            LIMIT {depth}
        ) AS t
        UNION ALL
        SELECT v.prefix, v.key, {vector_weight}::float8 AS weight,
               row_number() OVER (ORDER BY v.dist, v.prefix, v.key) AS place
        FROM (
            {nearest_items}
            LIMIT {depth}
        ) AS v
    ) AS r
    GROUP BY r.prefix, r.key
    ORDER BY score DESC, r.prefix, r.key
    LIMIT {limit} OFFSET {offset}
) AS fused
JOIN {store} AS s ON s.prefix = fused.prefix AND s.key = fused.key;

-- name: nearest_items
-- The items with the vectors nearest to the query, nearest first, each at the distance of its
-- best vector: vector_search's page and hybrid_search's vector list, cut by their LIMIT.
-- {candidates}: a LIMIT for the ANN index to stop at, or nothing for the exact re-run.
SELECT c.prefix, c.key, min(c.dist) AS dist
FROM (
    SELECT sv.prefix, sv.key, {distance} AS dist
    FROM {vectors} AS sv
    JOIN {store} AS s ON s.prefix = sv.prefix AND s.key = sv.key
    WHERE {namespace} AND {filter} AND (s.expires_at IS NULL OR s.expires_at > now())
    ORDER BY {order}
    {candidates}
) AS c
GROUP BY c.prefix, c.key
ORDER BY dist, c.prefix, c.key;

-- name: vector_distance
-- {operator}: pgvector's distance operator; {vector_type}: vector or halfvec.
(sv.embedding {operator} {query}::{vector_type});

-- name: exact_order
-- `+ 0`: not the ANN index's expression, so the exact order over every vector.
{distance} + 0;

-- name: candidates
LIMIT {candidates};

-- name: candidates_with_settings
-- The same, with pgvector settings for this statement only ({settings}: set_config(..., true)
-- calls, joined by ||). The LIMIT node evaluates its count before it reads a row, and the
-- index scan starts at that first read, so the scan sees them; they end with the statement's
-- transaction (in a caller's own transaction, with that transaction).
LIMIT {candidates} + 0 * length({settings});

-- name: bounded_searches
-- Searches of one filter shape, each under a prefix of at most {bound} items, whatever
-- their number: see _reads.bounded_searches. {arrays}: the searches' values, one array each,
-- as sub-selects; {columns}: the names of the filter's arrays (`, f0, f1`...).
SELECT q.op, r.prefix, r.key, r.value, r.created_at, r.updated_at,
       NULL::float8 AS score, q.refresh, coalesce(r.rank, 0) AS rank
FROM unnest({arrays}) AS q(op, ns, refresh, lim, skip{columns})
CROSS JOIN LATERAL (
    SELECT count(*) AS items, array_agg(p.p) AS rows FROM (
        SELECT p FROM {store} AS p
        WHERE p.prefix ~>=~ q.ns AND p.prefix ~<~ (q.ns || '/')
        ORDER BY p.prefix USING ~<~ LIMIT {read}) AS p
) AS counted
LEFT JOIN LATERAL (
    SELECT s.prefix, s.key, s.value, s.created_at, s.updated_at,
           row_number() OVER (ORDER BY s.updated_at DESC, s.prefix, s.key) AS rank
    FROM unnest(counted.rows) AS s
    WHERE counted.items <= {bound}
      AND (s.prefix = q.ns OR s.prefix ~>=~ (q.ns || '.')) AND {filter}
      AND (s.expires_at IS NULL OR s.expires_at > now())
    ORDER BY s.updated_at DESC, s.prefix, s.key
    LIMIT q.lim OFFSET q.skip
) AS r ON true
WHERE r.key IS NOT NULL OR counted.items > {bound};

-- name: list_namespaces
-- One list_namespaces: {namespace} is s.prefix or its first labels (first_labels).
SELECT {op}::int AS op, t.ns AS prefix, NULL::text AS key, NULL::jsonb AS value,
       NULL::timestamptz AS created_at, NULL::timestamptz AS updated_at,
       NULL::float8 AS score, false AS refresh,
       row_number() OVER (ORDER BY t.ns) AS rank
FROM (
    SELECT DISTINCT {namespace} COLLATE "C" AS ns
    FROM {store} AS s
    WHERE {conditions}
) AS t
ORDER BY t.ns
LIMIT {limit} OFFSET {offset};

-- name: first_labels
array_to_string((string_to_array(s.prefix, '.'))[1:{depth}::int], '.');

-- name: prefix_matches
s.prefix ~ {pattern};

-- name: reads
-- The branches of a batch's reads ({union}), when none refreshes a TTL: a plain SELECT, so
-- it runs on a read-only replica.
SELECT * FROM ({union}) AS results;

-- name: reads_refreshing
-- The same, moving the expiry of what it returns that asks for a refresh ({refreshes}:
-- refresh_gets, refresh_found or both, as CTEs).
WITH results AS ({union}),
{refreshes}
SELECT * FROM results;

-- name: refresh_gets
-- The gets' live items with a TTL, keyed by the gets' own values ({source}, as in gets),
-- not by the rows of results: Citus routes an UPDATE keyed by parameters to the one shard
-- holding the item (a single get then touches one shard throughout), where an UPDATE joined
-- to another statement's rows is sent to every shard.
refreshed_gets AS (
    UPDATE {store} AS s SET expires_at = {expiry}
    FROM {source} AS w(op, prefix, key, refresh)
    WHERE w.refresh AND s.prefix = w.prefix AND s.key = w.key
      AND s.expires_at > now() AND s.ttl_minutes IS NOT NULL
);

-- name: refresh_found
-- The items the searches returned that ask for a refresh.
refreshed AS (
    UPDATE {store} AS s SET expires_at = {expiry}
    FROM results AS r
    WHERE r.refresh AND r.key IS NOT NULL AND s.prefix = r.prefix AND s.key = r.key
      AND s.expires_at IS NOT NULL AND s.ttl_minutes IS NOT NULL
);

-- name: refreshed_expiry
-- A refreshed item's new expiry: by the exact TTL when known, and only while the write that
-- set it is still the item's last write (rows written before ttl_exact_at existed: while it
-- agrees with the official column, which this store writes as its ceiling). Added in UTC
-- timestamps: Citus refuses, in an UPDATE routed to one shard, a function that is not
-- IMMUTABLE applied to a column, and timestamptz + interval is STABLE (time zones) where
-- timestamp + interval is IMMUTABLE. For an interval of seconds both give the same instant.
timezone('UTC', timezone('UTC', now()) + make_interval(secs => 60 * CASE
        WHEN s.ttl_exact_minutes IS NOT NULL AND (s.ttl_exact_at = s.updated_at
             OR (s.ttl_exact_at IS NULL AND ceil(s.ttl_exact_minutes) = s.ttl_minutes))
        THEN s.ttl_exact_minutes ELSE s.ttl_minutes END));

-- name: upsert_rows
-- A few puts without vectors as VALUES rows ({rows}: upsert_row or upsert_row_without_ttl
-- each): no CTE and no arrays to build or unnest. `updated_at = EXCLUDED.updated_at`, the
-- row's now(), not now() itself: Citus refuses a function that is not IMMUTABLE in the DO
-- UPDATE SET of an insert into a distributed table (the same value on any server).
INSERT INTO {store} AS s (prefix, key, value, created_at, updated_at,
                          expires_at, ttl_minutes, ttl_exact_minutes, ttl_exact_at)
VALUES {rows}
ON CONFLICT (prefix, key) DO UPDATE
SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at,
    ttl_minutes = EXCLUDED.ttl_minutes,
    ttl_exact_minutes = EXCLUDED.ttl_exact_minutes,
    ttl_exact_at = EXCLUDED.ttl_exact_at;

-- name: upsert_row
({prefix}, {key}, {value}::jsonb, now(), now(), now() + make_interval(secs => {ttl}::float8 * 60), ceil({ttl}::float8)::int, {ttl}::float8, now());

-- name: upsert_row_without_ttl
-- Nothing expires; the row is otherwise what the other forms write for it.
({prefix}, {key}, {value}::jsonb, now(), now(), NULL, NULL, NULL, now());

-- name: writes
-- Every other batch of puts and deletes: the CTEs below that it needs ({ctes}).
WITH {ctes}
SELECT 1;

-- name: delete_rows
-- A few deletes and nothing else, as VALUES rows ({rows}: delete_row each): no CTE and no
-- arrays. On Citus a single delete is then routed to the item's shard.
DELETE FROM {store} AS s
USING (VALUES {rows}) AS d(prefix, key)
WHERE s.prefix = d.prefix AND s.key = d.key;

-- name: delete_row
({prefix}::text, {key}::text);

-- name: delete_items
gone AS (
    DELETE FROM {store} AS s
    USING unnest(%(deleted_prefixes)b::text[], %(deleted_keys)b::text[]) AS d(prefix, key)
    WHERE s.prefix = d.prefix AND s.key = d.key
);

-- name: upsert_items
-- updated_at from EXCLUDED: see upsert_rows.
upserted AS (
    INSERT INTO {store} AS s (prefix, key, value, created_at, updated_at,
                              expires_at, ttl_minutes, ttl_exact_minutes, ttl_exact_at)
    SELECT u.prefix, u.key, u.value::jsonb, now(), now(),
           now() + make_interval(secs => u.ttl * 60), ceil(u.ttl)::int, u.ttl, now()
    FROM unnest(%(prefixes)b::text[], %(keys)b::text[], %(values)b::text[], %(ttls)b::float8[])
         AS u(prefix, key, value, ttl)
    ON CONFLICT (prefix, key) DO UPDATE
    SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at,
        ttl_minutes = EXCLUDED.ttl_minutes,
        ttl_exact_minutes = EXCLUDED.ttl_exact_minutes,
        ttl_exact_at = EXCLUDED.ttl_exact_at
);

-- name: delete_stale_vectors
-- Every upserted item loses the vectors its new value no longer has.
stale AS (
    DELETE FROM {vectors} AS v
    USING unnest(%(prefixes)b::text[], %(keys)b::text[]) AS r(prefix, key)
    WHERE v.prefix = r.prefix AND v.key = r.key
      AND NOT EXISTS (
          SELECT 1 FROM unnest(%(field_prefixes)b::text[], %(field_keys)b::text[],
                               %(field_names)b::text[]) AS f(prefix, key, field)
          WHERE f.prefix = v.prefix AND f.key = v.key AND f.field = v.field_name)
);

-- name: upsert_vectors
embedded AS (
    INSERT INTO {vectors} (prefix, key, field_name, embedding, created_at, updated_at)
    SELECT e.prefix, e.key, e.field, e.embedding::{vector_type}, now(), now()
    FROM unnest(%(field_prefixes)b::text[], %(field_keys)b::text[], %(field_names)b::text[],
                %(embeddings)b::text[]) AS e(prefix, key, field, embedding)
    ON CONFLICT (prefix, key, field_name) DO UPDATE
    SET embedding = EXCLUDED.embedding, updated_at = EXCLUDED.updated_at
);

-- name: sweep_expired
-- One bounded batch of the TTL sweep; SKIP LOCKED lets several sweepers share the work
-- without waiting.
WITH doomed AS (
    SELECT prefix, key FROM {store}
    WHERE expires_at IS NOT NULL AND expires_at <= now()
    ORDER BY expires_at
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM {store} AS s USING doomed AS d
    WHERE s.prefix = d.prefix AND s.key = d.key
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: sweep_expired_citus
-- The same batch on Citus, which refuses FOR UPDATE in a query over several shards: the
-- batch's keys are picked first (each shard sends its earliest, the coordinator keeps the
-- first batch_size), then deleted on their shards. Without SKIP LOCKED two sweepers may pick
-- the same items: the second waits for the first and deletes (and counts) none of them. The
-- second column, how many were picked, tells the sweep whether to go on.
WITH doomed AS (
    SELECT prefix, key FROM {store}
    WHERE expires_at IS NOT NULL AND expires_at <= now()
    ORDER BY expires_at
    LIMIT %(batch_size)s
), gone AS (
    DELETE FROM {store} AS s USING doomed AS d
    WHERE s.prefix = d.prefix AND s.key = d.key
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM doomed);
