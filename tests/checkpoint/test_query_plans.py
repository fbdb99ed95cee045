"""Hot-path queries are index-served: checked on the plan's shape, never on a time.

The data: one thread of 10,000 checkpoints beside 200 threads of 100, each checkpoint with a
blob and a write, analysed so the planner sees the real sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from checkpoint_pg import PostgresSaver
from checkpoint_pg._sql import TASKS_CHANNEL, list_statement, statements_for
from checkpoint_pg.testing import DatabaseFactory

_FILL = """
INSERT INTO checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT t, '', lpad(i::text, 12, '0'),
       CASE WHEN i > 1 THEN lpad((i - 1)::text, 12, '0') END,
       jsonb_build_object('v', 4, 'id', lpad(i::text, 12, '0'), 'ts', '',
                          'channel_values', '{}'::jsonb, 'versions_seen', '{}'::jsonb,
                          'channel_versions', jsonb_build_object('doc', i::text)),
       jsonb_build_object('step', i, 'source', 'loop', 'run_id', t || '-' || (i / 10))
FROM (SELECT 'big' AS t, g AS i FROM generate_series(1, 10000) AS g
      UNION ALL
      SELECT 'th' || (g % 200), g FROM generate_series(10001, 30000) AS g) AS s;
INSERT INTO checkpoint_blobs
SELECT thread_id, '', 'doc', checkpoint -> 'channel_versions' ->> 'doc', 'json', '\\x7b7d'
FROM checkpoints;
INSERT INTO checkpoint_writes
SELECT thread_id, '', checkpoint_id, 'task', 0, 'ch', 'json', '\\x7b7d', '' FROM checkpoints;
"""


@pytest.fixture(scope="module")
def big_db(db_factory: DatabaseFactory) -> Iterator[psycopg.Connection[Any]]:
    with db_factory.database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup()
        conn.execute(_FILL)
        conn.execute("ANALYZE")
        yield conn


def _plan(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    row = conn.execute("EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS) " + sql, params).fetchone()
    assert row is not None
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(row[0][0]["Plan"])
    return nodes


def _scans(nodes: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (n["Node Type"], n.get("Index Name") or n["Relation Name"])
        for n in nodes
        if ("Relation Name" in n or "Index Name" in n) and n.get("Actual Loops", 1) > 0
    }


def _no_seq_scans(nodes: list[dict[str, Any]]) -> None:
    assert not [s for s in _scans(nodes) if s[0] == "Seq Scan"]


def test_list_limit_10_on_a_10000_checkpoint_thread_reads_a_handful_of_pages(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = list_statement(None, frozenset({"thread_id", "checkpoint_ns"}))
    params = {"thread_id": "big", "checkpoint_ns": "", "tasks": TASKS_CHANNEL, "limit": 10}
    nodes = _plan(big_db, sql, params)
    _no_seq_scans(nodes)
    assert ("Index Scan", "checkpoints_pkey") in _scans(nodes)
    assert ("Index Scan", "checkpoint_blobs_pkey") in _scans(nodes)
    # 10 rows, each a few index probes: bounded whatever the thread's length
    assert nodes[0]["Shared Hit Blocks"] + nodes[0].get("Shared Read Blocks", 0) < 200


def test_get_tuple_probes_blobs_by_primary_key(big_db: psycopg.Connection[Any]) -> None:
    sql = statements_for(None).select_latest
    nodes = _plan(big_db, sql, {"thread_id": "big", "checkpoint_ns": "", "tasks": TASKS_CHANNEL})
    _no_seq_scans(nodes)
    assert ("Index Scan", "checkpoint_blobs_pkey") in _scans(nodes)
    assert nodes[0]["Shared Hit Blocks"] + nodes[0].get("Shared Read Blocks", 0) < 30


def test_a_metadata_filter_across_threads_uses_the_metadata_index(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = list_statement(None, frozenset({"metadata"}))
    params = {"metadata": Jsonb({"step": 5000}), "tasks": TASKS_CHANNEL, "limit": 10}
    nodes = _plan(big_db, sql, params)
    _no_seq_scans(nodes)
    assert ("Bitmap Index Scan", "checkpoints_metadata_idx") in _scans(nodes)


def test_delete_for_runs_finds_its_checkpoints_through_the_metadata_index(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = statements_for(None).delete_for_runs
    params = {"run_ids": ["big-3"], "run_filters": [Jsonb({"run_id": "big-3"})]}
    with big_db.transaction(force_rollback=True):
        nodes = _plan(big_db, sql, params)
    assert ("Bitmap Index Scan", "checkpoints_metadata_idx") in _scans(nodes)
