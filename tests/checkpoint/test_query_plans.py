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


def test_get_tuple_of_the_latest_checkpoint_is_planned_once_per_connection(
    db_factory: DatabaseFactory,
) -> None:
    # One long thread among 2,000 of 10 checkpoints: the generic plan expects 20 rows a
    # thread, the custom plans of short threads 10. Unless the rows it counts for the lateral
    # reads are one either way, the generic plan looks dearer and the server plans every call.
    fill = history_fill(big=20_000, end=40_000, other_thread="'t' || (g / 10)")
    with db_factory.database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        conn.execute(fill)
        conn.execute("ANALYZE")
        for i in range(25):  # psycopg prepares the statement from the 6th call on
            saver.get_tuple({"configurable": {"thread_id": f"t{2500 + i}", "checkpoint_ns": ""}})
        prepared = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%%LIMIT 1%%' AND statement LIKE '%%jsonb_each_text%%'"
        ).fetchall()
    assert len(prepared) == 1
    generic, custom = prepared[0]
    assert custom <= 5
    assert generic >= 15
