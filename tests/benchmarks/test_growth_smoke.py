"""The growth workload at a quick size: the rows it loads are the rows the savers write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from psycopg import sql

from benchmarks import growth
from checkpoint_pg import PostgresSaver
from tests.harness import TestServer


def _drop(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def loaded(pg_server: TestServer) -> Iterator[str]:
    """A database loaded with 200 checkpoints (100 in one long thread, 10 threads of 10)."""
    name = f"growth_test_{uuid.uuid4().hex[:8]}"
    try:
        dsn, _ = growth.load_database(pg_server.admin_dsn, name, 200)
        yield dsn
    finally:
        _drop(pg_server.admin_dsn, name)


def _config(thread: str, checkpoint_id: str | None = None) -> dict[str, dict[str, str]]:
    conf = {"thread_id": thread, "checkpoint_ns": ""}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def test_layout_puts_half_the_checkpoints_in_long_threads() -> None:
    layout = growth.Layout(1_000_000)
    assert (layout.long_threads, layout.long_length, layout.short_threads) == (50, 10_000, 50_000)
    assert layout.checkpoints == 1_000_000


def test_a_loaded_checkpoint_is_its_template_checkpoint_with_its_own_ids(loaded: str) -> None:
    k = growth.TEMPLATE + 3  # a second pass over the template
    with PostgresSaver.from_conn_string(loaded) as saver:
        template = list(saver.list(_config("template")))[::-1][k % growth.TEMPLATE]
        got = saver.get_tuple(_config(growth.long_id(0), growth.checkpoint_id(k)))
    assert got is not None
    assert got.checkpoint["id"] == growth.checkpoint_id(k)
    assert got.parent_config == _config(growth.long_id(0), growth.checkpoint_id(k - 1))
    assert got.checkpoint["channel_values"] == {
        **template.checkpoint["channel_values"],
        "step": k,
    }
    assert got.metadata == {**template.metadata, "step": k, "run_id": f"run-{growth.long_id(0)}"}
    assert [w[1:] for w in got.pending_writes or []] == [
        w[1:] for w in template.pending_writes or []
    ]


def test_both_savers_read_a_loaded_thread_alike(loaded: str) -> None:
    thread = _config(growth.short_id(3))
    with (
        PostgresSaver.from_conn_string(loaded) as ours,
        OfficialSaver.from_conn_string(loaded) as official,
    ):
        mine = list(ours.list(thread))
        theirs = list(official.list(thread))
    assert len(mine) == growth.SHORT
    assert [t.checkpoint for t in mine] == [t.checkpoint for t in theirs]
    assert [t.metadata for t in mine] == [t.metadata for t in theirs]
    assert mine[0].checkpoint["id"] == growth.checkpoint_id(growth.SHORT - 1)


def test_run_times_every_operation_for_both_savers_and_plots(
    pg_server: TestServer, tmp_path: Path
) -> None:
    prefix = f"growth_run_{uuid.uuid4().hex[:8]}"
    results = growth.run(pg_server.admin_dsn, [100], samples=3, prefix=prefix)
    entry = results["sizes"]["100"]
    assert set(entry["operations"]) == set(growth.OPERATIONS)
    for by in entry["operations"].values():
        assert set(by) == {growth.OFFICIAL, growth.OURS}
        assert all(by[p]["p99"] >= by[p]["p50"] > 0 for p in by)
    assert set(entry["plans"]) <= set(growth.OPERATIONS)
    assert all(entry["plans"].values())
    assert entry["bytes"]["tables"] > 0
    assert entry["bytes"]["indexes"] > 0
    growth.plot(results, tmp_path / "growth.png")
    assert (tmp_path / "growth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with psycopg.connect(pg_server.admin_dsn) as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchone()
    assert left == (0,)


def test_reuse_measures_the_database_a_kept_run_loaded_without_loading_it_again(
    pg_server: TestServer,
) -> None:
    prefix = f"growth_reuse_{uuid.uuid4().hex[:8]}"
    try:
        first = growth.run(pg_server.admin_dsn, [100], samples=2, keep=True, prefix=prefix)
        again = growth.run(pg_server.admin_dsn, [100], samples=2, reuse=True, prefix=prefix)
        assert first["sizes"]["100"]["load_seconds"] is not None
        assert again["sizes"]["100"]["load_seconds"] is None  # not loaded again
        assert again["sizes"]["100"]["checkpoints"] == first["sizes"]["100"]["checkpoints"]
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{prefix}_100" WITH (FORCE)')


def test_reuse_loads_a_database_that_is_missing(pg_server: TestServer) -> None:
    prefix = f"growth_reuse_{uuid.uuid4().hex[:8]}"
    try:
        results = growth.run(pg_server.admin_dsn, [100], samples=2, reuse=True, prefix=prefix)
        assert results["sizes"]["100"]["load_seconds"] is not None
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{prefix}_100" WITH (FORCE)')


def test_sizes_are_measured_together_and_all_dropped(pg_server: TestServer) -> None:
    prefix = f"growth_two_{uuid.uuid4().hex[:8]}"
    results = growth.run(pg_server.admin_dsn, [60, 100], samples=2, prefix=prefix)
    assert set(results["sizes"]) == {"60", "100"}
    for entry in results["sizes"].values():
        assert set(entry["operations"]) == set(growth.OPERATIONS)
    with psycopg.connect(pg_server.admin_dsn) as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchone()
    assert left == (0,)
