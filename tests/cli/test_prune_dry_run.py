"""`prune --dry-run` counts exactly what the real prune then deletes, subgraph namespaces
included, and says its policy in words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from langchain_core.messages import HumanMessage

from checkpoint_pg import PostgresSaver
from checkpoint_pg.cli.ops.output import human_duration
from tests.cli.conftest import Seeded, invoke, nested_graph, parsed, seed

COUNTS = ("threads_deleted", "threads_pruned", "checkpoints_deleted", "blobs_deleted")


def _with_many_subgraph_calls(dsn: str) -> Seeded:
    """The seeded threads plus one whose root graph called a subgraph on each of 4 turns."""
    seeded = seed(dsn)
    with PostgresSaver.from_conn_string(dsn, pool_size=1) as saver:
        graph = nested_graph().compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": "calls-1"}}
        for turn in range(4):
            graph.invoke({"messages": [HumanMessage(f"turn {turn}")], "turns": 0}, config)
    return seeded


def _rows(dsn: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM checkpoints), (SELECT count(*) FROM checkpoint_blobs),"
            " (SELECT count(*) FROM checkpoint_writes)"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _per_namespace_estimate(dsn: str, keep: int) -> int:
    """What "keep the newest N of each namespace" alone would delete (the old dry run)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT row_number() OVER (PARTITION BY thread_id,"
            " checkpoint_ns ORDER BY checkpoint_id DESC) AS n FROM checkpoints) AS r"
            " WHERE n > %s",
            (keep,),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    "policy",
    [
        ("--keep-latest", "1"),
        ("--keep-latest", "2"),
        ("--keep-latest", "2", "--idle-for", "1s", "--batch-size", "2"),
    ],
)
def test_the_dry_run_counts_exactly_what_the_prune_deletes(dsn: str, policy: tuple[str]) -> None:
    _with_many_subgraph_calls(dsn)
    before = _rows(dsn)
    planned = parsed(invoke("prune", *policy, "--dry-run", "--json", "--dsn", dsn))
    assert _rows(dsn) == before  # the dry run deleted nothing
    done = parsed(invoke("prune", *policy, "--yes", "--json", "--dsn", dsn))
    assert (planned["dry_run"], done["dry_run"]) == (True, False)
    assert {k: planned[k] for k in COUNTS} == {k: done[k] for k in COUNTS}
    after = _rows(dsn)
    assert before[0] - after[0] == done["checkpoints_deleted"]
    assert before[1] - after[1] == done["blobs_deleted"]
    assert before[2] - after[2] == done["writes_deleted"] == planned["writes_deleted"]


def test_finished_subgraph_namespaces_are_counted_whole(dsn: str) -> None:
    _with_many_subgraph_calls(dsn)
    planned = parsed(invoke("prune", "--keep-latest", "2", "--dry-run", "--json", "--dsn", dsn))
    # Per namespace alone would keep 2 checkpoints of each finished subgraph call: the real
    # prune deletes those calls whole, so it deletes more than that estimate.
    assert planned["checkpoints_deleted"] > _per_namespace_estimate(dsn, 2)


def test_the_dry_run_says_the_policy_in_words(seeded: Seeded) -> None:
    result = seeded.run("prune", "--idle-days", "30", "--keep-latest", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "dry run: would delete every thread whose latest checkpoint is older than 30 days and "
        "keep only the newest 2 checkpoint(s) of each namespace of the other threads:"
    )
    assert "subgraph call's namespace goes whole" in lines[1]
    assert lines[2].startswith("  0 thread(s) would be deleted, 2 pruned; ")
    assert "nothing was deleted" in lines[3]
    assert "0:00:00" not in result.stdout


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        (timedelta(days=30), "30 days"),
        (timedelta(days=1, hours=12), "1 day 12 hours"),
        (timedelta(minutes=90), "1 hour 30 minutes"),
        (timedelta(seconds=1), "1 second"),
    ],
)
def test_durations_in_words(duration: timedelta, words: str) -> None:
    assert human_duration(duration) == words
