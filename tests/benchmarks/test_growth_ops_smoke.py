"""The thread-operations growth workload at a quick size."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver

from benchmarks import growth, growth_ops
from checkpoint_pg import PostgresSaver, RetentionPolicy
from tests.harness import TestServer

THREADS = 50


@pytest.fixture(scope="module")
def loaded(pg_server: TestServer) -> Iterator[tuple[str, growth_ops.Ages]]:
    """A database of 50 threads of `LENGTH` checkpoints, their ages spread over a year."""
    name = f"gops_test_{uuid.uuid4().hex[:8]}"
    try:
        dsn, ages, _ = growth_ops.load(pg_server.admin_dsn, name, THREADS)
        yield dsn, ages
    finally:
        growth.drop_database(pg_server.admin_dsn, name)


def _config(thread: str) -> dict[str, dict[str, str]]:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


def test_slices_by_age_cover_every_thread_once() -> None:
    ages = growth_ops.Ages(THREADS, time.time())
    slices = [ages.slice(j, 10) for j in range(5)]
    assert sorted(t for s in slices for t in s) == [growth_ops.thread_id(i) for i in range(50)]
    oldest = max(range(THREADS), key=ages.rank)
    assert growth_ops.thread_id(oldest) in slices[0]


def test_both_savers_read_a_loaded_thread_and_its_time(loaded: tuple[str, growth_ops.Ages]) -> None:
    dsn, ages = loaded
    thread = growth_ops.thread_id(7)
    with PostgresSaver.from_conn_string(dsn) as ours, OfficialSaver.from_conn_string(dsn) as theirs:
        mine = list(ours.list(_config(thread)))
        official = list(theirs.list(_config(thread)))
        page = ours.list_threads(after=growth_ops.thread_id(6), limit=1)
    assert len(mine) == growth_ops.LENGTH
    assert [t.checkpoint for t in mine] == [t.checkpoint for t in official]
    assert [t.metadata for t in mine] == [t.metadata for t in official]
    born = ages.born(7)
    assert mine[-1].checkpoint["ts"] == born.isoformat(timespec="microseconds")
    [info] = page.threads
    assert info.thread_id == thread
    assert info.checkpoints == growth_ops.LENGTH
    assert info.latest_ts == born + timedelta(seconds=growth_ops.LENGTH - 1)


def test_a_share_of_the_threads_carry_the_metadata_the_filters_look_for(
    loaded: tuple[str, growth_ops.Ages],
) -> None:
    dsn, _ = loaded
    with PostgresSaver.from_conn_string(dsn) as saver:
        gold = saver.list_threads(filter={"tier": "gold"}, limit=100)
        silver = saver.list_threads(filter={"tier": "silver"}, limit=100)
        latest = saver.get_tuple(_config(growth_ops.thread_id(0)))
    assert [t.thread_id for t in gold] == [growth_ops.thread_id(i) for i in (0,)]
    assert [t.thread_id for t in silver] == [growth_ops.thread_id(i) for i in range(1, 50, 10)]
    assert latest is not None
    assert latest.metadata["tier"] == "gold"
    assert latest.metadata["run_id"] == f"run-{growth_ops.thread_id(0)}"


def test_idle_for_makes_exactly_the_oldest_slices_idle(
    loaded: tuple[str, growth_ops.Ages],
) -> None:
    dsn, ages = loaded
    with PostgresSaver.from_conn_string(dsn) as saver:
        report = saver.apply_retention(RetentionPolicy(idle_for=ages.idle_for(2, 5)), dry_run=True)
    assert report.threads_deleted == 10
    assert report.checkpoints_deleted == 10 * growth_ops.LENGTH


def test_run_measures_every_operation_and_plots(pg_server: TestServer, tmp_path: Path) -> None:
    prefix = f"gops_run_{uuid.uuid4().hex[:8]}"
    results = growth_ops.run(
        pg_server.admin_dsn, [250], samples=2, slice_fraction=0.032, quiet=0.2, prefix=prefix
    )
    entry = results["sizes"]["250"]
    assert set(entry["list_threads"]) == set(growth_ops.LIST_OPERATIONS)
    assert len(entry["deletes"]) == len(growth_ops.DELETE_OPERATIONS)
    for by in entry["deletes"].values():
        assert [sum(run["rows"].values()) > 0 for run in by["runs"]] == [True] * growth_ops.ROUNDS
        assert by["rows_per_s"] > 0
    retention = entry["deletes"]["apply_retention idle_for (ours)"]["runs"]
    assert [run["report"]["threads_deleted"] for run in retention] == [8] * growth_ops.ROUNDS
    assert entry["put_latency"]["quiet"]["n"] > 0
    assert all(p["scans"] for p in entry["plans"].values())
    assert entry["stats_after_deletes"]["checkpoints"]["dead"] > 0
    assert entry["vacuum_seconds"] >= 0
    growth_ops.plot(results, tmp_path / "ops.png")
    assert (tmp_path / "ops.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with psycopg.connect(pg_server.admin_dsn) as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchone()
    assert left == (0,)
