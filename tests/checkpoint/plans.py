"""Shared by the plan-shape tests: synthetic histories and EXPLAIN (ANALYZE) nodes."""

from __future__ import annotations

from typing import Any

import psycopg


def history_fill(*, big: int, end: int, other_thread: str, write_channel: str = "ch") -> str:
    """SQL filling the checkpoint tables: thread 'big' of `big` checkpoints, then checkpoints
    `big` + 1 .. `end` spread over other threads named by the SQL expression `other_thread`
    (of the checkpoint number g); each with one blob and one pending write."""
    return f"""
INSERT INTO checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT t, '', lpad(i::text, 12, '0'),
       CASE WHEN i > 1 THEN lpad((i - 1)::text, 12, '0') END,
       jsonb_build_object('v', 4, 'id', lpad(i::text, 12, '0'), 'ts', '',
                          'channel_values', '{{}}'::jsonb, 'versions_seen', '{{}}'::jsonb,
                          'channel_versions', jsonb_build_object('doc', i::text)),
       jsonb_build_object('step', i, 'source', 'loop', 'run_id', t || '-' || (i / 10))
FROM (SELECT 'big' AS t, g AS i FROM generate_series(1, {big}) AS g
      UNION ALL
      SELECT {other_thread}, g FROM generate_series({big + 1}, {end}) AS g) AS s;
INSERT INTO checkpoint_blobs
SELECT thread_id, '', 'doc', checkpoint -> 'channel_versions' ->> 'doc', 'json', '\\x7b7d'
FROM checkpoints;
INSERT INTO checkpoint_writes
SELECT thread_id, '', checkpoint_id, 'task', 0, '{write_channel}', 'json', '\\x7b7d', ''
FROM checkpoints;
"""


def explain_nodes(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every node of the executed plan of `sql`, depth first."""
    row = conn.execute("EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS) " + sql, params).fetchone()
    assert row is not None
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(row[0][0]["Plan"])
    return nodes


def scans(nodes: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(node type, index or table) of every scan that ran."""
    return {
        (n["Node Type"], n.get("Index Name") or n["Relation Name"])
        for n in nodes
        if ("Relation Name" in n or "Index Name" in n) and n.get("Actual Loops", 1) > 0
    }
