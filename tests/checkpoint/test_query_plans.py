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
from tests.checkpoint.plans import explain_nodes, history_fill, scans
from tests.harness import DatabaseFactory

_FILL = history_fill(big=10_000, end=30_000, other_thread="'th' || (g % 200)")


@pytest.fixture(scope="module")
def big_db(db_factory: DatabaseFactory) -> Iterator[psycopg.Connection[Any]]:
    with db_factory.database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup()
        conn.execute(_FILL)
        conn.execute("ANALYZE")
        yield conn


def _no_seq_scans(nodes: list[dict[str, Any]]) -> None:
    assert not [s for s in scans(nodes) if s[0] == "Seq Scan"]


def test_list_limit_10_on_a_10000_checkpoint_thread_reads_a_handful_of_pages(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = list_statement(None, frozenset({"thread_id", "checkpoint_ns"}))
    params = {"thread_id": "big", "checkpoint_ns": "", "tasks": TASKS_CHANNEL, "limit": 10}
    nodes = explain_nodes(big_db, sql, params)
    _no_seq_scans(nodes)
    assert ("Index Scan", "checkpoints_pkey") in scans(nodes)
    assert ("Index Scan", "checkpoint_blobs_pkey") in scans(nodes)
    # 10 rows, each a few index probes: bounded whatever the thread's length
    assert nodes[0]["Shared Hit Blocks"] + nodes[0].get("Shared Read Blocks", 0) < 200


def test_get_tuple_probes_blobs_by_primary_key(big_db: psycopg.Connection[Any]) -> None:
    sql = statements_for(None).select_latest
    nodes = explain_nodes(
        big_db, sql, {"thread_id": "big", "checkpoint_ns": "", "tasks": TASKS_CHANNEL}
    )
    _no_seq_scans(nodes)
    assert ("Index Scan", "checkpoint_blobs_pkey") in scans(nodes)
    assert nodes[0]["Shared Hit Blocks"] + nodes[0].get("Shared Read Blocks", 0) < 30


def test_a_metadata_filter_across_threads_uses_the_metadata_index(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = list_statement(None, frozenset({"metadata"}))
    params = {"metadata": Jsonb({"step": 5000}), "tasks": TASKS_CHANNEL, "limit": 10}
    nodes = explain_nodes(big_db, sql, params)
    _no_seq_scans(nodes)
    assert ("Bitmap Index Scan", "checkpoints_metadata_idx") in scans(nodes)


def test_delete_for_runs_finds_its_checkpoints_through_the_metadata_index(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = statements_for(None).delete_for_runs
    params = {"run_ids": ["big-3"], "run_filters": [Jsonb({"run_id": "big-3"})]}
    with big_db.transaction(force_rollback=True):
        nodes = explain_nodes(big_db, sql, params)
    assert ("Bitmap Index Scan", "checkpoints_metadata_idx") in scans(nodes)
