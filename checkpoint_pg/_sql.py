"""Every SQL statement the savers run, in one place.

Statements are written with ``{checkpoints}``, ``{blobs}``, ``{writes}`` and
``{migrations}`` placeholders for the (optionally schema-qualified) table names.
`statements_for` renders them once per schema through `psycopg.sql`, so values are
only ever parameters and identifiers only ever quoted identifiers.

Each hot-path operation is a single statement (one network round trip): data-modifying
CTEs and ``unnest`` over arrays replace a statement per row.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from langgraph.checkpoint.serde.types import TASKS
from psycopg import sql

# -- schema -------------------------------------------------------------------------------------

# The official package's migration list, by version number. The numbering is theirs: a database
# set up by either package must look migrated to the other, so these rows are written exactly as
# the official saver writes them (v = index in this list). They run in one transaction
# (see _schema.py), so index builds are plain, not CONCURRENTLY: setup is all-or-nothing.
OFFICIAL_MIGRATIONS: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS {migrations} (v INTEGER PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS {checkpoints} (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT,
        type TEXT,
        checkpoint JSONB NOT NULL,
        metadata JSONB NOT NULL DEFAULT '{{}}',
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
    )""",
    """CREATE TABLE IF NOT EXISTS {blobs} (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL DEFAULT '',
        channel TEXT NOT NULL,
        version TEXT NOT NULL,
        type TEXT NOT NULL,
        blob BYTEA,
        PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
    )""",
    """CREATE TABLE IF NOT EXISTS {writes} (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        channel TEXT NOT NULL,
        type TEXT,
        blob BYTEA NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
    )""",
    "ALTER TABLE {blobs} ALTER COLUMN blob DROP NOT NULL",
    "SELECT 1",
    "CREATE INDEX IF NOT EXISTS checkpoints_thread_id_idx ON {checkpoints} (thread_id)",
    "CREATE INDEX IF NOT EXISTS checkpoint_blobs_thread_id_idx ON {blobs} (thread_id)",
    "CREATE INDEX IF NOT EXISTS checkpoint_writes_thread_id_idx ON {writes} (thread_id)",
    "ALTER TABLE {writes} ADD COLUMN IF NOT EXISTS task_path TEXT NOT NULL DEFAULT ''",
)


# This project's own migrations, recorded in `checkpoint_pg_migrations` (never in the official
# table). Each is idempotent; the official saver ignores what they add.
OWN_MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS {own_migrations} (
        v INTEGER PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    # Serves metadata filters (`list(filter=…)`, across threads too) and delete_for_runs.
    "CREATE INDEX IF NOT EXISTS checkpoints_metadata_idx"
    " ON {checkpoints} USING gin (metadata jsonb_path_ops)",
    # lz4 instead of pglz for values PostgreSQL compresses (those over ~2 KB), where the server
    # has it (14+, built with lz4). A storage setting, invisible to every reader, the official
    # saver included; it applies to values written from now on. pglz gives up on a value
    # unless it saves 25 % within its first KB: serialized message lists of varied text are
    # stored raw, where lz4 saves ~35 % (benchmarks/RESULTS.md) and compresses faster.
    # (EXECUTE, so that servers older than 14 never parse SET COMPRESSION.)
    """DO $checkpoint_pg_lz4$
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
    $checkpoint_pg_lz4$""",
)


# -- opt-in hash partitioning by thread_id (``partitions=N``) ----------------------------------
# The official tables 1-3, created as hash-partitioned parents (same columns, keys and
# defaults: every primary key starts with thread_id, the partition key) with N partitions
# each. The official migrations then run over them as usual: the CREATE TABLEs find them, the
# later ALTERs and plain CREATE INDEXes apply to the parent and propagate to every partition.
PARTITIONED_TABLES: dict[int, str] = {1: "checkpoints", 2: "blobs", 3: "writes"}
PARTITION_KEY = "HASH (thread_id)"

_PARTITION = (
    "CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {parent}"
    " FOR VALUES WITH (MODULUS {modulus}, REMAINDER {remainder})"
)

# For each checkpoint table that exists: its kind ('r' table, 'p' partitioned), its
# partition key and how many partitions it has.
TABLE_LAYOUT = """
SELECT t.name, c.relkind::text,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       (SELECT count(*) FROM pg_inherits AS i WHERE i.inhparent = c.oid)
FROM unnest(%s::text[]) AS t(name)
JOIN pg_class AS c ON c.oid = to_regclass(t.name)"""


def partitioned_table_sql(version: int, schema: str | None) -> str:
    """Official migration `version` (1-3) creating its table partitioned by hash of thread_id."""
    return migration_sql(version, schema) + " PARTITION BY " + PARTITION_KEY


def partition_sql(version: int, schema: str | None, modulus: int, remainder: int) -> str:
    """The partition `remainder` of `modulus` of the table official migration `version` makes."""
    parent = _tables(schema)[PARTITIONED_TABLES[version]]
    base = table_name(version)
    names = (schema, f"{base}_p{remainder}") if schema else (f"{base}_p{remainder}",)
    partition = sql.Identifier(*names)
    return (
        sql.SQL(_PARTITION)
        .format(
            partition=partition,
            parent=parent,
            modulus=sql.Literal(modulus),
            remainder=sql.Literal(remainder),
        )
        .as_string(None)
    )


def table_name(version: int) -> str:
    """The bare name of the table official migration `version` (1-3) creates."""
    return {1: "checkpoints", 2: "checkpoint_blobs", 3: "checkpoint_writes"}[version]


def qualified_table(version: int, schema: str | None) -> str:
    """The quoted, schema-qualified name of the table official migration `version` creates."""
    return render("{" + PARTITIONED_TABLES[version] + "}", schema)


@dataclass(frozen=True)
class Statements:
    """The rendered statements for one schema (or the search_path when schema is None)."""

    create_schema: str
    xact_lock_migrations: str
    latest_migration: str
    record_migration: str
    latest_own_migration: str
    record_own_migration: str

    select_latest: str
    select_by_id: str

    upsert_checkpoint: str
    upsert_writes: str
    insert_writes: str

    delete_thread: str
    delete_for_runs: str
    copy_thread: str

    prune_delete: str


# A checkpoint row with everything `get_tuple` needs, fetched in one round trip:
# the blobs of its channel versions, its pending writes and, for checkpoints saved
# before format v4, the pending sends that lived in its parent's writes.
_SELECT_TUPLE = """
SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id,
       c.checkpoint, c.metadata,
       b.channels, b.types, b.blobs,
       w.task_ids, w.task_paths, w.idxs, w.channels, w.types, w.blobs,
       s.types, s.blobs
FROM {checkpoints} AS c
LEFT JOIN LATERAL (
    SELECT array_agg(bl.channel) AS channels, array_agg(bl.type) AS types,
           array_agg(bl.blob) AS blobs
    FROM jsonb_each_text(c.checkpoint -> 'channel_versions') AS v(channel, version)
    -- One primary-key probe per channel. LIMIT 1 keeps the planner from hash-joining all of
    -- the thread's blobs, which it otherwise does, so the cost grew with thread length.
    CROSS JOIN LATERAL (
        SELECT x.channel, x.type, x.blob FROM {blobs} AS x
        WHERE x.thread_id = c.thread_id AND x.checkpoint_ns = c.checkpoint_ns
          AND x.channel = v.channel AND x.version = v.version
        LIMIT 1
    ) AS bl
) AS b ON TRUE
LEFT JOIN LATERAL (
    SELECT array_agg(cw.task_id) AS task_ids, array_agg(cw.task_path) AS task_paths,
           array_agg(cw.idx) AS idxs, array_agg(cw.channel) AS channels,
           array_agg(cw.type) AS types, array_agg(cw.blob) AS blobs
    FROM {writes} AS cw
    WHERE cw.thread_id = c.thread_id AND cw.checkpoint_ns = c.checkpoint_ns
      AND cw.checkpoint_id = c.checkpoint_id
) AS w ON TRUE
LEFT JOIN LATERAL (
    SELECT array_agg(sw.type ORDER BY sw.task_path, sw.task_id, sw.idx) AS types,
           array_agg(sw.blob ORDER BY sw.task_path, sw.task_id, sw.idx) AS blobs
    FROM {writes} AS sw
    WHERE (c.checkpoint ->> 'v')::int < 4 AND c.parent_checkpoint_id IS NOT NULL
      AND sw.thread_id = c.thread_id AND sw.checkpoint_ns = c.checkpoint_ns
      AND sw.checkpoint_id = c.parent_checkpoint_id AND sw.channel = %(tasks)s
) AS s ON TRUE
"""

_SELECT_LATEST = (
    _SELECT_TUPLE
    + """
WHERE c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
ORDER BY c.checkpoint_id DESC
LIMIT 1"""
)

_SELECT_BY_ID = (
    _SELECT_TUPLE
    + """
WHERE c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
  AND c.checkpoint_id = %(checkpoint_id)s"""
)

# `list` pages by keyset on (checkpoint_id, thread_id, checkpoint_ns) descending, so a
# page costs the same at any depth of a long thread and memory stays bounded. Each
# combination of filters is its own statement text: a `%s IS NULL OR …` predicate would
# defeat the index once the server switches a prepared statement to a generic plan.
_ORDER_PAGE = """
ORDER BY c.checkpoint_id DESC, c.thread_id DESC, c.checkpoint_ns DESC
LIMIT %(limit)s"""

_LIST_PREDICATES = {
    "thread_id": "c.thread_id = %(thread_id)s",
    "checkpoint_ns": "c.checkpoint_ns = %(checkpoint_ns)s",
    "checkpoint_id": "c.checkpoint_id = %(checkpoint_id)s",
    "before": "c.checkpoint_id < %(before)s",
    "metadata": "c.metadata @> %(metadata)s",
    "after": (
        "(c.checkpoint_id, c.thread_id, c.checkpoint_ns)"
        " < (%(after_id)s, %(after_thread)s, %(after_ns)s)"
    ),
}


@cache
def list_statement(schema: str | None, predicates: frozenset[str]) -> str:
    """The `list` page query filtered by `predicates` (names from _LIST_PREDICATES)."""
    unknown = predicates - _LIST_PREDICATES.keys()
    assert not unknown, unknown
    where = " AND ".join(_LIST_PREDICATES[p] for p in _LIST_PREDICATES if p in predicates)
    return render(_SELECT_TUPLE + "WHERE " + (where or "TRUE") + _ORDER_PAGE, schema)


# One statement stores the new blobs and the checkpoint: atomic, one round trip. The arrays
# travel in binary (`%(…)b`): as text, psycopg hex-escapes every blob and the server parses an
# array literal, which made a 64 KB put 1.6x slower (benchmarks/RESULTS.md).
_INSERT_CHECKPOINT = """
INSERT INTO {checkpoints}
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
VALUES (%(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(parent_checkpoint_id)s,
        %(checkpoint)s, %(metadata)s)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata"""
_UPSERT_CHECKPOINT = (
    """
WITH new_blobs AS (
    INSERT INTO {blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(checkpoint_ns)s, x.channel, x.version, x.type, x.blob
    FROM unnest(%(channels)b::text[], %(versions)b::text[], %(types)b::text[],
                %(blobs)b::bytea[]) AS x(channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)"""
    + _INSERT_CHECKPOINT
)

_WRITES_INSERT = """
INSERT INTO {writes}
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s,
       x.idx, x.channel, x.type, x.blob
FROM unnest(%(idxs)b::int[], %(channels)b::text[], %(types)b::text[], %(blobs)b::bytea[])
     AS x(idx, channel, type, blob)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"""

_UPSERT_WRITES = (
    _WRITES_INSERT
    + """
DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"""
)
_INSERT_WRITES = _WRITES_INSERT + "\nDO NOTHING"

# A put with few blobs and put_writes with few writes send their rows as VALUES instead:
# one statement text per row count (each prepared once), no arrays to build on the client or
# to unnest on the server. Measured on a 1 KB one-blob put: 152 us against 223 us with
# unnest (benchmarks/RESULTS.md). Larger batches keep the arrays: one statement for any size.
MAX_VALUES_ROWS = 8
BLOB_ARRAYS = ("channels", "versions", "types", "blobs")
WRITE_ARRAYS = ("idxs", "channels", "types", "blobs")
_BLOB_ROW = (
    "(%(thread_id)s, %(checkpoint_ns)s, %(channels_{i})s, %(versions_{i})s, %(types_{i})s,"
    " %(blobs_{i})b)"
)
_WRITE_ROW = (
    "(%(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s,"
    " %(idxs_{i})s::int, %(channels_{i})s, %(types_{i})s, %(blobs_{i})b)"
)
_INSERT_BLOB_ROWS = """
WITH new_blobs AS (
    INSERT INTO {blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
    VALUES ROWS
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)"""
_INSERT_WRITE_ROWS = """
INSERT INTO {writes}
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
VALUES ROWS
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"""


def _rows_sql(row: str, count: int) -> str:
    # Doubled braces: the text goes through `render` (psycopg.sql.format) afterwards.
    return ", ".join(row.format(i=i).replace("{", "{{").replace("}", "}}") for i in range(count))


@cache
def put_statement(schema: str | None, blobs: int) -> str:
    """`put` storing `blobs` new blobs: VALUES rows up to MAX_VALUES_ROWS, else arrays."""
    if blobs > MAX_VALUES_ROWS:
        return statements_for(schema).upsert_checkpoint
    if not blobs:
        return render(_INSERT_CHECKPOINT, schema)
    return render(
        _INSERT_BLOB_ROWS.replace("ROWS", _rows_sql(_BLOB_ROW, blobs)) + _INSERT_CHECKPOINT,
        schema,
    )


@cache
def writes_statement(schema: str | None, writes: int, upsert: bool) -> str:
    """`put_writes` of `writes` rows: VALUES rows up to MAX_VALUES_ROWS, else arrays."""
    if writes > MAX_VALUES_ROWS:
        sql_ = statements_for(schema)
        return sql_.upsert_writes if upsert else sql_.insert_writes
    conflict = _UPSERT_WRITES[len(_WRITES_INSERT) :] if upsert else "\nDO NOTHING"
    return render(
        _INSERT_WRITE_ROWS.replace("ROWS", _rows_sql(_WRITE_ROW, writes)) + conflict, schema
    )


def spread(params: dict[str, Any], arrays: tuple[str, ...]) -> dict[str, Any]:
    """`params` plus one ``name_i`` key per element of each array, for the VALUES forms."""
    count = len(params[arrays[0]])
    if count > MAX_VALUES_ROWS:
        return params
    out = dict(params)
    for name in arrays:
        for i, value in enumerate(params[name]):
            out[f"{name}_{i}"] = value
    return out


_DELETE_THREAD = """
WITH gone_writes AS (
    DELETE FROM {writes} WHERE thread_id = %(thread_id)s
), gone_blobs AS (
    DELETE FROM {blobs} WHERE thread_id = %(thread_id)s
)
DELETE FROM {checkpoints} WHERE thread_id = %(thread_id)s"""

# Given a CTE `gone` of deleted checkpoints (thread_id, checkpoint_ns, checkpoint_id, versions):
# delete their writes, and list the (channel, version) blobs they referred to as `freed`.
_WRITES_AND_FREED_OF_GONE = """
), gone_writes AS (
    DELETE FROM {writes} AS w
    USING gone
    WHERE w.thread_id = gone.thread_id AND w.checkpoint_ns = gone.checkpoint_ns
      AND w.checkpoint_id = gone.checkpoint_id
    RETURNING 1
), freed AS (
    SELECT DISTINCT gone.thread_id, gone.checkpoint_ns, v.key AS channel, v.value AS version
    FROM gone CROSS JOIN LATERAL jsonb_each_text(gone.versions) AS v
)"""

# The checkpoints a run created go, with their writes; a blob goes when no checkpoint
# that stays refers to its (channel, version) any longer.
_DELETE_FOR_RUNS = (
    """
WITH gone AS (
    DELETE FROM {checkpoints}
    WHERE metadata @> ANY(%(run_filters)s::jsonb[])
    RETURNING thread_id, checkpoint_ns, checkpoint_id, checkpoint -> 'channel_versions' AS versions
"""
    + _WRITES_AND_FREED_OF_GONE
    + """
DELETE FROM {blobs} AS b
USING freed
WHERE b.thread_id = freed.thread_id AND b.checkpoint_ns = freed.checkpoint_ns
  AND b.channel = freed.channel AND b.version = freed.version
  AND NOT EXISTS (
      SELECT 1 FROM {checkpoints} AS k
      WHERE k.thread_id = freed.thread_id AND k.checkpoint_ns = freed.checkpoint_ns
        AND k.checkpoint -> 'channel_versions' ->> freed.channel = freed.version
        AND (k.metadata ->> 'run_id' IS NULL
             OR k.metadata ->> 'run_id' <> ALL(%(run_ids)s::text[]))
  )"""
)

# Copies every checkpoint (the whole parent chain), blob and write of the source thread.
# Rows already at the target are left as they are, so a retried copy is harmless.
_COPY_THREAD = """
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
ON CONFLICT DO NOTHING"""

_PRUNE_DELETE = """
WITH gone_writes AS (
    DELETE FROM {writes} WHERE thread_id = ANY(%(thread_ids)s::text[])
), gone_blobs AS (
    DELETE FROM {blobs} WHERE thread_id = ANY(%(thread_ids)s::text[])
)
DELETE FROM {checkpoints} WHERE thread_id = ANY(%(thread_ids)s::text[])"""


def _tables(schema: str | None) -> dict[str, sql.Composable]:
    def name(table: str) -> sql.Composable:
        if schema is None:
            return sql.Identifier(table)
        return sql.Identifier(schema, table)

    tables = {
        "checkpoints": name("checkpoints"),
        "blobs": name("checkpoint_blobs"),
        "writes": name("checkpoint_writes"),
        "migrations": name("checkpoint_migrations"),
        "own_migrations": name("checkpoint_pg_migrations"),
        "schema": sql.Identifier(schema) if schema else sql.SQL(""),
    }
    # The same names as string literals, for statements that build SQL on the server.
    for table in ("checkpoints", "blobs", "writes"):
        tables[f"{table}_text"] = sql.Literal(tables[table].as_string(None))
    return tables


def render(template: str, schema: str | None, **extra: sql.Composable) -> str:
    """Render one statement template for `schema` into plain SQL text."""
    return sql.SQL(template).format(**{**_tables(schema), **extra}).as_string(None)


@cache
def statements_for(schema: str | None) -> Statements:
    """The statements of a saver whose tables live in `schema` (None: the search_path)."""
    texts = {
        "create_schema": "CREATE SCHEMA IF NOT EXISTS {schema}" if schema else "SELECT 1",
        "xact_lock_migrations": "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        "latest_migration": "SELECT max(v) FROM {migrations}",
        "record_migration": "INSERT INTO {migrations} (v) VALUES (%s) ON CONFLICT DO NOTHING",
        "latest_own_migration": "SELECT max(v) FROM {own_migrations}",
        "record_own_migration": (
            "INSERT INTO {own_migrations} (v) VALUES (%s) ON CONFLICT DO NOTHING"
        ),
        "select_latest": _SELECT_LATEST,
        "select_by_id": _SELECT_BY_ID,
        "upsert_checkpoint": _UPSERT_CHECKPOINT,
        "upsert_writes": _UPSERT_WRITES,
        "insert_writes": _INSERT_WRITES,
        "delete_thread": _DELETE_THREAD,
        "delete_for_runs": _DELETE_FOR_RUNS,
        "copy_thread": _COPY_THREAD,
        "prune_delete": _PRUNE_DELETE,
    }
    assert set(texts) == {f.name for f in fields(Statements)}
    return Statements(**{key: render(text, schema) for key, text in texts.items()})


def migration_sql(version: int, schema: str | None, *, own: bool = False) -> str:
    """Render migration `version` (official, or this project's own) for `schema`."""
    return render((OWN_MIGRATIONS if own else OFFICIAL_MIGRATIONS)[version], schema)


TASKS_CHANNEL = TASKS


# -- prune keep_latest ----------------------------------------------------------------------------

# Per thread and namespace: the `keep` latest checkpoints (newest first; keep_latest is 1) and
# what deciding what to keep needs, for each:
# the parent that holds its pending sends when it predates format v4, the delta channels it
# rebuilds from ancestors, and the root checkpoint a subgraph call started from.
_PRUNE_HEADS = """
SELECT h.thread_id, h.checkpoint_ns, h.checkpoint_id,
       CASE WHEN (c.checkpoint ->> 'v')::int < 4 AND EXISTS (
           SELECT 1 FROM {writes} AS w
           WHERE w.thread_id = h.thread_id AND w.checkpoint_ns = h.checkpoint_ns
             AND w.checkpoint_id = c.parent_checkpoint_id AND w.channel = %(tasks)s
       ) THEN c.parent_checkpoint_id END AS sends_parent,
       ARRAY(
           SELECT jsonb_object_keys(
               CASE WHEN jsonb_typeof(c.metadata -> 'counters_since_delta_snapshot') = 'object'
                    THEN c.metadata -> 'counters_since_delta_snapshot' ELSE '{{}}' END)
           UNION
           SELECT v.key FROM jsonb_each(c.checkpoint -> 'channel_versions') AS v
           WHERE c.metadata ? 'delta_writes_versioned'
             AND NOT coalesce(c.checkpoint -> 'channel_values', '{{}}') ? v.key
       ) AS delta_channels,
       c.metadata -> 'parents' ->> '' AS root,
       EXISTS (
           SELECT 1 FROM {checkpoints} AS r
           WHERE r.thread_id = h.thread_id AND r.checkpoint_ns = ''
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
ORDER BY h.thread_id, h.checkpoint_ns, h.rank"""

# Walks each head's parent chain until every delta channel it needs has met a stored value
# (a snapshot, or a plain value from before the channel became a DeltaChannel).
_PRUNE_DELTA_CHAINS = """
WITH RECURSIVE chain (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, remaining)
AS (
    SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, s.channels
    FROM jsonb_to_recordset(%(seeds)s::jsonb)
         AS s(thread_id text, checkpoint_ns text, head text, channels text[])
    JOIN {checkpoints} AS c
      ON c.thread_id = s.thread_id AND c.checkpoint_ns = s.checkpoint_ns
     AND c.checkpoint_id = s.head
    UNION ALL
    SELECT p.thread_id, p.checkpoint_ns, p.checkpoint_id, p.parent_checkpoint_id,
           ARRAY(SELECT ch FROM unnest(chain.remaining) AS ch
                 WHERE NOT {has_value})
    FROM chain
    JOIN {checkpoints} AS p
      ON p.thread_id = chain.thread_id AND p.checkpoint_ns = chain.checkpoint_ns
     AND p.checkpoint_id = chain.parent_checkpoint_id
    WHERE cardinality(chain.remaining) > 0
)
SELECT DISTINCT thread_id, checkpoint_ns, checkpoint_id FROM chain"""

# Deletes, in one statement, every checkpoint of the listed namespaces that is older than
# the namespace's bound (or equal to it, for a finished subgraph call) and not kept; their
# writes; the blobs no kept checkpoint refers to; and unlinks kept checkpoints from deleted
# parents. Checkpoints saved after the heads were read are newer than every bound: untouched.
# Returns how many checkpoints, threads, writes and blobs it deleted.
_PRUNE_APPLY = (
    """
WITH bounds AS (
    SELECT * FROM unnest(%(b_threads)s::text[], %(b_ns)s::text[], %(b_ids)s::text[],
                         %(b_inclusive)s::bool[])
         AS b(thread_id, checkpoint_ns, bound, inclusive)
), kept AS (
    SELECT * FROM unnest(%(k_threads)s::text[], %(k_ns)s::text[], %(k_ids)s::text[])
         AS k(thread_id, checkpoint_ns, checkpoint_id)
), gone AS (
    DELETE FROM {checkpoints} AS c
    USING bounds AS b
    WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
      AND (c.checkpoint_id < b.bound OR (b.inclusive AND c.checkpoint_id = b.bound))
      AND NOT EXISTS (
          SELECT 1 FROM kept AS k
          WHERE k.thread_id = c.thread_id AND k.checkpoint_ns = c.checkpoint_ns
            AND k.checkpoint_id = c.checkpoint_id)
    RETURNING c.thread_id, c.checkpoint_ns, c.checkpoint_id,
              c.checkpoint -> 'channel_versions' AS versions
"""
    + _WRITES_AND_FREED_OF_GONE
    + """, still_used AS (
    SELECT DISTINCT c.thread_id, c.checkpoint_ns, v.key AS channel, v.value AS version
    FROM {checkpoints} AS c
    JOIN bounds AS b ON b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns
    CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') AS v
    WHERE NOT (c.checkpoint_id < b.bound OR (b.inclusive AND c.checkpoint_id = b.bound))
       OR EXISTS (
          SELECT 1 FROM kept AS k
          WHERE k.thread_id = c.thread_id AND k.checkpoint_ns = c.checkpoint_ns
            AND k.checkpoint_id = c.checkpoint_id)
), gone_blobs AS (
    DELETE FROM {blobs} AS bl
    USING freed AS f
    WHERE bl.thread_id = f.thread_id AND bl.checkpoint_ns = f.checkpoint_ns
      AND bl.channel = f.channel AND bl.version = f.version
      AND NOT EXISTS (
          SELECT 1 FROM still_used AS u
          WHERE u.thread_id = f.thread_id AND u.checkpoint_ns = f.checkpoint_ns
            AND u.channel = f.channel AND u.version = f.version)
    RETURNING 1
)
, unlinked AS (
    UPDATE {checkpoints} AS c
    SET parent_checkpoint_id = NULL
    FROM kept AS k
    WHERE c.thread_id = k.thread_id AND c.checkpoint_ns = k.checkpoint_ns
      AND c.checkpoint_id = k.checkpoint_id
      AND c.parent_checkpoint_id IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM kept AS k2
          WHERE k2.thread_id = c.thread_id AND k2.checkpoint_ns = c.checkpoint_ns
            AND k2.checkpoint_id = c.parent_checkpoint_id)
)
SELECT (SELECT count(*) FROM gone), (SELECT count(DISTINCT thread_id) FROM gone),
       (SELECT count(*) FROM gone_writes), (SELECT count(*) FROM gone_blobs)"""
)


@dataclass(frozen=True)
class PruneStatements:
    heads: str
    delta_chains: str
    apply: str


@cache
def prune_statements_for(schema: str | None) -> PruneStatements:
    """The keep_latest statements for `schema`."""
    return PruneStatements(
        heads=render(_PRUNE_HEADS, schema),
        delta_chains=render(
            _PRUNE_DELTA_CHAINS, schema, has_value=sql.SQL(render(_HAS_VALUE, schema))
        ),
        apply=render(_PRUNE_APPLY, schema),
    )


# Whether checkpoint `p` stores a value for channel `ch`: inline in its JSONB, or as a
# non-empty blob under the version it names (the official format keeps non-primitive values
# only there). A DeltaChannel snapshot is both: a `true` marker inline and the blob.
_HAS_VALUE = """(coalesce(p.checkpoint -> 'channel_values', '{{}}') ? ch
    OR EXISTS (
        SELECT 1 FROM {blobs} AS hb
        WHERE hb.thread_id = p.thread_id AND hb.checkpoint_ns = p.checkpoint_ns
          AND hb.channel = ch AND hb.version = p.checkpoint -> 'channel_versions' ->> ch
          AND hb.type <> 'empty'))"""

# `get_delta_channel_history` in one statement: walk the target's parent chain while any
# requested channel still lacks a stored value. A row's writes count for the channels still
# wanted when the walk reached it (`incoming`); the first ancestor with a value seeds it.
_DELTA_HISTORY = """
WITH RECURSIVE chain (checkpoint_id, parent_checkpoint_id, depth, incoming, remaining) AS (
    SELECT t.checkpoint_id, t.parent_checkpoint_id, 0, '{{}}'::text[], %(channels)s::text[]
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
  ON bl.thread_id = c.thread_id AND bl.checkpoint_ns = c.checkpoint_ns AND bl.channel = ch
 AND bl.version = c.checkpoint -> 'channel_versions' ->> ch AND bl.type <> 'empty'
WHERE NOT (ch = ANY(chain.remaining))"""


@cache
def delta_history_statement(schema: str | None) -> str:
    """The `get_delta_channel_history` query for `schema`."""
    return render(_DELTA_HISTORY, schema, has_value=sql.SQL(render(_HAS_VALUE, schema)))


# -- retention and thread listing (see checkpoint_pg/_retention.py) ------------------------------

# When a checkpoint was saved, as the server reads it: its `ts` (ISO 8601 with an offset, as
# LangGraph writes it), or NULL when it has none or another shape (the CASE keeps the cast from
# ever failing on such a value). NULL counts as recent: never deleted for idleness.
_TS_OF = (
    "CASE WHEN {alias}.checkpoint ->> 'ts' ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ]"
    "[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}([.][0-9]+)?(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$'"
    " THEN ({alias}.checkpoint ->> 'ts')::timestamptz END"
)


def _ts_of(alias: str) -> str:
    return _TS_OF.replace("{alias}", alias)


# Distinct thread ids in order from a cursor, one index probe each (a "skip scan" over the
# primary key): never a scan or sort of the whole table. Evaluated lazily: a LIMIT above stops
# it. `{cmp}` is ``>=`` for the first page ('' sorts first) and ``>`` after a cursor.
_THREAD_IDS = """
WITH RECURSIVE ids (thread_id, n) AS (
    SELECT (SELECT min(c.thread_id) FROM {checkpoints} AS c WHERE c.thread_id {cmp} %(after)s), 1
    UNION ALL
    SELECT (SELECT min(c.thread_id) FROM {checkpoints} AS c WHERE c.thread_id > ids.thread_id),
           ids.n + 1
    FROM ids
    WHERE ids.thread_id IS NOT NULL AND ids.n < %(scan)s
)"""

# A thread's latest checkpoint: the root namespace's newest, else (a thread with subgraph
# checkpoints only) its last namespace's newest. Each branch is one backward index probe.
_HEAD_OF = """(
    (SELECT h.checkpoint_id, h.metadata, h.checkpoint ->> 'ts' AS ts, {ts_h} AS at
     FROM {checkpoints} AS h
     WHERE h.thread_id = {t} AND h.checkpoint_ns = ''
     ORDER BY h.checkpoint_id DESC LIMIT 1)
    UNION ALL
    (SELECT h.checkpoint_id, h.metadata, h.checkpoint ->> 'ts', {ts_h}
     FROM {checkpoints} AS h
     WHERE h.thread_id = {t}
     ORDER BY h.checkpoint_ns DESC, h.checkpoint_id DESC LIMIT 1)
    LIMIT 1
)"""


def _head_of(thread_expr: str) -> str:
    return _HEAD_OF.replace("{t}", thread_expr).replace("{ts_h}", _ts_of("h"))


# Per thread of a page: its checkpoints (all namespaces) and stored bytes (pg_column_size of
# checkpoint + metadata, blobs and writes), each an index range scan on the thread's prefix.
_THREAD_STATS = """
SELECT p.thread_id, p.checkpoint_id, p.ts, p.metadata, cs.n,
       cs.bytes + coalesce(bs.bytes, 0) + coalesce(ws.bytes, 0)
FROM page AS p
CROSS JOIN LATERAL (
    SELECT count(*) AS n,
           coalesce(sum(pg_column_size(c.checkpoint) + pg_column_size(c.metadata)), 0) AS bytes
    FROM {checkpoints} AS c WHERE c.thread_id = p.thread_id
) AS cs
CROSS JOIN LATERAL (
    SELECT sum(pg_column_size(b.blob)) AS bytes FROM {blobs} AS b WHERE b.thread_id = p.thread_id
) AS bs
CROSS JOIN LATERAL (
    SELECT sum(pg_column_size(w.blob)) AS bytes FROM {writes} AS w WHERE w.thread_id = p.thread_id
) AS ws
ORDER BY p.thread_id"""

# A page of threads walked from the cursor, filtered on their latest checkpoint.
_LIST_THREADS_WALK = (
    _THREAD_IDS
    + """, page AS MATERIALIZED (
    SELECT ids.thread_id, head.checkpoint_id, head.ts, head.metadata
    FROM ids CROSS JOIN LATERAL {head} AS head
    WHERE ids.thread_id IS NOT NULL {where}
    LIMIT %(limit)s
)"""
    + _THREAD_STATS
)

# With a metadata filter: candidate threads come from root checkpoints matching it, through
# the GIN index `checkpoints_metadata_idx`; then each one's latest checkpoint must match too.
_LIST_THREADS_FILTERED = (
    """
WITH candidates AS (
    SELECT DISTINCT c.thread_id FROM {checkpoints} AS c
    WHERE c.metadata @> %(metadata)s AND c.checkpoint_ns = '' AND c.thread_id {cmp} %(after)s
), page AS MATERIALIZED (
    SELECT cand.thread_id, head.checkpoint_id, head.ts, head.metadata
    FROM candidates AS cand CROSS JOIN LATERAL {head} AS head
    WHERE TRUE {where}
    ORDER BY cand.thread_id
    LIMIT %(limit)s
)"""
    + _THREAD_STATS
)

_IDLE_HEAD = " AND coalesce(head.at < now() - %(idle_for)s::interval, false)"


@cache
def list_threads_statement(schema: str | None, *, first: bool, metadata: bool, idle: bool) -> str:
    """The `list_threads` page query for one combination of arguments."""
    template = _LIST_THREADS_FILTERED if metadata else _LIST_THREADS_WALK
    thread = "cand.thread_id" if metadata else "ids.thread_id"
    where = (" AND head.metadata @> %(metadata)s" if metadata else "") + (
        _IDLE_HEAD if idle else ""
    )
    text = template.replace("{head}", _head_of(thread)).replace("{where}", where)
    return render(text.replace("{cmp}", ">=" if first else ">"), schema)


# One retention batch, step 1: the next `scan` threads from the cursor, each one's latest
# checkpoint, whether it is idle (by that checkpoint's ts against the server clock) and whether
# it has anything for keep_latest to prune (more than `keep` root checkpoints, or subgraph
# namespaces). The threads with work are locked for this transaction with a non-blocking
# advisory lock: a thread another sweeper holds comes back `locked = false` and is left to it.
_RETENTION_PICK = (
    _THREAD_IDS
    + """, scanned AS MATERIALIZED (
    SELECT ids.thread_id,
           coalesce(head.at < now() - %(idle_for)s::interval, false) AS idle,
           CASE WHEN %(keep)s::int IS NULL THEN false ELSE (
               EXISTS (SELECT 1 FROM {checkpoints} AS p
                       WHERE p.thread_id = ids.thread_id AND p.checkpoint_ns = ''
                       ORDER BY p.checkpoint_id DESC OFFSET %(keep)s LIMIT 1)
               OR EXISTS (SELECT 1 FROM {checkpoints} AS p
                          WHERE p.thread_id = ids.thread_id AND p.checkpoint_ns > '')
           ) END AS prunable
    FROM ids CROSS JOIN LATERAL {head} AS head
    WHERE ids.thread_id IS NOT NULL
)
SELECT s.thread_id, s.idle, s.prunable,
       CASE WHEN s.idle OR s.prunable
            THEN pg_try_advisory_xact_lock(hashtextextended(%(lock_prefix)s || s.thread_id, 0))
            ELSE false END AS locked
FROM scanned AS s
ORDER BY s.thread_id"""
)

# Step 2: delete the locked idle threads whole, re-checking idleness in this statement's own
# snapshot over every checkpoint of every namespace: a thread that got a checkpoint since the
# pick (or has any recent or undated one) stays. Returns what it deleted, per thread.
_RETENTION_DELETE_IDLE = (
    """
WITH idle AS (
    SELECT t.thread_id FROM unnest(%(threads)s::text[]) AS t(thread_id)
    WHERE NOT EXISTS (
        SELECT 1 FROM {checkpoints} AS k
        WHERE k.thread_id = t.thread_id
          AND NOT coalesce("""
    + _ts_of("k")
    + """ < now() - %(idle_for)s::interval, false))
), gone AS (
    DELETE FROM {checkpoints} AS c USING idle WHERE c.thread_id = idle.thread_id
    RETURNING c.thread_id
), gone_writes AS (
    DELETE FROM {writes} AS w USING idle WHERE w.thread_id = idle.thread_id RETURNING 1
), gone_blobs AS (
    DELETE FROM {blobs} AS b USING idle WHERE b.thread_id = idle.thread_id RETURNING 1
), per_thread AS (
    SELECT thread_id, count(*) AS n FROM gone GROUP BY thread_id
)
SELECT (SELECT array_agg(thread_id ORDER BY thread_id) FROM per_thread),
       (SELECT array_agg(n ORDER BY thread_id) FROM per_thread),
       (SELECT count(*) FROM gone_writes), (SELECT count(*) FROM gone_blobs)"""
)

# Step 3, in a new snapshot: which of the deleted threads have a checkpoint again (a put that
# committed while step 2 ran). The batch then rolls back to before step 2 and leaves them.
_RETENTION_VERIFY = """
SELECT t.thread_id FROM unnest(%(threads)s::text[]) AS t(thread_id)
WHERE EXISTS (SELECT 1 FROM {checkpoints} AS k WHERE k.thread_id = t.thread_id)"""


@dataclass(frozen=True)
class RetentionStatements:
    pick_first: str
    pick_after: str
    delete_idle: str
    verify: str
    savepoint: str
    rollback_to_savepoint: str
    dry_run_savepoint: str
    dry_run_rollback: str


@cache
def retention_statements_for(schema: str | None) -> RetentionStatements:
    """The retention sweep statements for `schema`."""
    pick = _RETENTION_PICK.replace("{head}", _head_of("ids.thread_id"))
    return RetentionStatements(
        pick_first=render(pick.replace("{cmp}", ">="), schema),
        pick_after=render(pick.replace("{cmp}", ">"), schema),
        delete_idle=render(_RETENTION_DELETE_IDLE, schema),
        verify=render(_RETENTION_VERIFY, schema),
        savepoint="SAVEPOINT checkpoint_pg_retention",
        rollback_to_savepoint="ROLLBACK TO SAVEPOINT checkpoint_pg_retention",
        dry_run_savepoint="SAVEPOINT checkpoint_pg_dry_run",
        dry_run_rollback="ROLLBACK TO SAVEPOINT checkpoint_pg_dry_run",
    )
