"""The store growth workload at a quick size: the rows it loads are the rows the stores read
as their own, and a run reports every operation for both stores, its bytes and its plans."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from langgraph.store.postgres import PostgresStore as OfficialStore

from benchmarks import search_bench, store_growth
from store import PostgresStore
from tests.harness import TestServer

SIZE = 300


def _left(admin_dsn: str, prefix: str) -> int:
    with psycopg.connect(admin_dsn) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def loaded(pg_server: TestServer) -> Iterator[tuple[str, bool]]:
    """A database of 300 items (with vectors when the server has pgvector)."""
    vectors = pg_server.has_extension("vector")
    name = f"gstore_smoke_{uuid.uuid4().hex[:8]}"
    try:
        dsn, _ = store_growth.load_database(pg_server.admin_dsn, name, SIZE, vectors=vectors)
        yield dsn, vectors
    finally:
        store_growth._drop(pg_server.admin_dsn, name)


def test_both_stores_read_the_loaded_items_as_the_generator_made_them(
    loaded: tuple[str, bool],
) -> None:
    dsn, vectors = loaded
    made = list(search_bench.items(SIZE))
    prefix, key, value = made[123]
    namespace = tuple(prefix.split("."))
    with (
        PostgresStore.from_conn_string(dsn) as ours,
        OfficialStore.from_conn_string(dsn) as official,
    ):
        mine, theirs = ours.get(namespace, key), official.get(namespace, key)
        assert mine is not None
        assert theirs is not None
        assert mine.value == theirs.value == value
        assert mine.updated_at == theirs.updated_at
        equal = {"status": value["status"], "topic": value["topic"]}
        found = ours.search(("users",), filter=equal, limit=SIZE)
        assert {i.key for i in found} == {
            i.key for i in official.search(("users",), filter=equal, limit=SIZE)
        }
        assert {i.key for i in found} == {
            k for _, k, v in made if v["status"] == value["status"] and v["topic"] == value["topic"]
        }
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM store").fetchone()
        assert row == (SIZE,)
        if vectors:
            assert conn.execute("SELECT count(*) FROM store_vectors").fetchone() == (SIZE,)


def test_the_range_window_matches_by_number_for_ours_and_by_text_for_official(
    loaded: tuple[str, bool],
) -> None:
    dsn, _ = loaded
    made = [v["score"] for _, _, v in search_bench.items(SIZE)]
    matched = store_growth.range_matched(dsn, lows=(900,))
    assert matched[store_growth.OURS] == sum(1 for s in made if 900 <= s < 950)
    assert matched[store_growth.OFFICIAL] == sum(1 for s in made if "900" <= str(s) < "950")


def _check_run(results: dict[str, object], operations: tuple[str, ...]) -> None:
    sizes = results["sizes"]
    assert isinstance(sizes, dict)
    entry = sizes["200"]
    assert set(entry["operations"]) == set(operations)
    for by in entry["operations"].values():
        assert set(by) == {store_growth.OFFICIAL, store_growth.OURS}
        assert all(by[p]["p99"] >= by[p]["p50"] > 0 for p in by)
    assert set(entry["plans"]) == set(operations)
    assert all(plan and plan[0] for plan in entry["plans"].values())
    assert entry["bytes"]["store"]["table"] > 0
    assert entry["bytes"]["store"]["indexes"] > 0


def test_run_times_every_operation_without_vectors_for_both_stores_and_plots(
    pg_server: TestServer, tmp_path: Path
) -> None:
    prefix = f"gstore_run_{uuid.uuid4().hex[:8]}"
    results = store_growth.run(pg_server.admin_dsn, [200], 3, vectors=False, prefix=prefix)
    _check_run(results, store_growth.OPERATIONS)
    store_growth.plot(results, tmp_path / "growth.png")
    assert (tmp_path / "growth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _left(pg_server.admin_dsn, prefix) == 0


@pytest.mark.pgvector
def test_run_times_the_vector_operations_with_pgvector(pg_server: TestServer) -> None:
    prefix = f"gstore_vec_{uuid.uuid4().hex[:8]}"
    results = store_growth.run(pg_server.admin_dsn, [200], 3, vectors=True, dims=16, prefix=prefix)
    _check_run(results, store_growth.OPERATIONS + store_growth.VECTOR_OPERATIONS)
    entry = results["sizes"]["200"]
    assert entry["bytes"]["store_vectors"]["indexes"] > 0
    assert any("store_vectors" in line for p in entry["plans"][store_growth.VECTOR] for line in p)
    assert _left(pg_server.admin_dsn, prefix) == 0
