"""At 200,000 items, filtered searches are index-served (plan shape, never a time), and a batch
of any mix of ops is a constant number of statements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import pytest
from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp

from store import PostgresStore
from store._plan import plan_batch
from store._reads import read_query
from store._sql import names_for
from tests.harness import DatabaseFactory

_FILL = """
INSERT INTO store (prefix, key, value, created_at, updated_at)
SELECT 'users.' || (g % 1000), 'k' || g,
       jsonb_build_object('n', g % 500, 'kind', 'k' || (g % 50), 'tag', 't' || (g % 7)),
       now(), now()
FROM generate_series(1, 200000) AS g
"""


@pytest.fixture(scope="module")
def big_store(db_factory: DatabaseFactory) -> Iterator[psycopg.Connection[Any]]:
    with db_factory.database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        PostgresStore(conn, range_index_fields=["n"]).setup()
        conn.execute(_FILL)
        conn.execute("ANALYZE store")
        yield conn


def _scans(conn: psycopg.Connection[Any], op: SearchOp) -> list[tuple[str, str]]:
    query = read_query(plan_batch([op], names_for(None), None), [], exact=set())
    assert query is not None
    row = conn.execute("EXPLAIN (FORMAT JSON) " + query.sql, query.params).fetchone()
    assert row is not None
    found: list[tuple[str, str]] = []

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node or "Index Name" in node:
            found.append((node["Node Type"], node.get("Index Name") or node["Relation Name"]))
        for child in node.get("Plans", []):
            walk(child)

    walk(row[0][0]["Plan"])
    return found


def test_an_equality_filter_is_answered_by_the_value_index(
    big_store: psycopg.Connection[Any],
) -> None:
    scans = _scans(big_store, SearchOp((), filter={"kind": "k7", "tag": "t3"}, limit=10))
    assert ("Bitmap Index Scan", "store_value_idx") in scans
    assert not [s for s in scans if s[0] == "Seq Scan"]


def test_a_range_filter_on_a_declared_field_is_answered_by_its_index(
    big_store: psycopg.Connection[Any],
) -> None:
    scans = _scans(big_store, SearchOp((), filter={"n": {"$gt": 495}}, limit=10))
    assert any(
        kind.startswith("Bitmap Index") and name.startswith("store_range_") for kind, name in scans
    )
    assert not [s for s in scans if s[0] == "Seq Scan"]


def test_a_namespace_scoped_search_uses_the_prefix_index(
    big_store: psycopg.Connection[Any],
) -> None:
    scans = _scans(big_store, SearchOp(("users", "5"), filter={"kind": "k5"}, limit=10))
    assert not [s for s in scans if s[0] == "Seq Scan"]


def test_a_search_in_a_small_namespace_reads_it_by_the_prefix_index_alone(
    big_store: psycopg.Connection[Any],
) -> None:
    # 200 items, 1 in 7 with the value: ANDing with the value index's bitmap (28,000 entries)
    # would cost more than reading the namespace's 200 rows.
    scans = _scans(big_store, SearchOp(("users", "5"), filter={"tag": "t3"}, limit=10))
    assert ("Index Scan", "store_prefix_idx") in scans
    assert not [s for s in scans if s[1] == "store_value_idx" or s[0] == "Seq Scan"]


def test_the_bounded_search_is_one_prepared_text_for_any_namespace_and_value() -> None:
    def query(namespace: tuple[str, ...], tag: str) -> Any:
        op = SearchOp(namespace, filter={"tag": tag}, limit=5)
        return read_query(plan_batch([op], names_for(None), None), [], exact=set())

    first, second = query(("users", "5"), "t3"), query(("teams", "x", "y"), "t1")
    assert first.sql == second.sql
    assert first.prepare is None  # psycopg prepares it after a few runs
    assert first.params != second.params


def test_the_bounded_search_keeps_its_generic_plan_on_the_prefix_index(
    big_store: psycopg.Connection[Any],
) -> None:
    # PostgreSQL switches a prepared statement to its generic plan only if that plan does not
    # look costlier than the custom ones; the bounds are sub-selects so both estimate alike.
    plan = plan_batch(
        [SearchOp(("users", "5"), filter={"tag": "t3"}, limit=10)], names_for(None), None
    )
    query = read_query(plan, [], exact=set())
    assert query is not None
    with psycopg.connect(big_store.info.dsn, autocommit=True) as conn:
        for _ in range(8):
            conn.execute(query.sql, query.params, prepare=True)
        row = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
        ).fetchone()
    assert row is not None
    generic, custom = row
    assert generic >= 2
    assert custom <= 6


@pytest.mark.nocitus("specifies the bounded prefix read, which Citus cannot plan: not used there")
def test_a_search_beyond_the_bound_is_run_again_and_then_remembered(dsn: str) -> None:
    from store._reads import BOUNDED_PREFIX_ITEMS

    with psycopg.connect(dsn, autocommit=True, cursor_factory=CountingCursor) as conn:
        store = PostgresStore(conn)
        store.setup()
        store.batch([PutOp(("wide",), f"k{i}", {"i": i}) for i in range(BOUNDED_PREFIX_ITEMS + 1)])
        CountingCursor.executed.clear()
        assert [i.key for i in store.search(("wide",), filter={"i": 7})] == ["k7"]
        assert len(CountingCursor.executed) == 2  # the bounded read, then the full one
        CountingCursor.executed.clear()
        assert [i.key for i in store.search(("wide",), filter={"i": 8})] == ["k8"]
        assert len(CountingCursor.executed) == 1


class CountingCursor(psycopg.Cursor[Any]):
    executed: ClassVar[list[str]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        CountingCursor.executed.append(str(query))
        return super().execute(query, params, **kwargs)


def test_a_batch_of_fifty_mixed_ops_is_two_statements(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, cursor_factory=CountingCursor) as conn:
        store = PostgresStore(conn)
        store.setup()
        CountingCursor.executed.clear()
        ops: list[Any] = []
        for i in range(10):
            ops += [
                PutOp(("ns", str(i)), "k", {"i": i}),
                GetOp(("ns", str(i)), "k"),
                SearchOp(("ns", str(i)), filter={"i": i}),
                SearchOp(("ns",), filter={"i": {"$gte": i}}),
                ListNamespacesOp(match_conditions=None, max_depth=2),
            ]
        results = store.batch(ops)
    assert len(results) == 50
    assert len(CountingCursor.executed) == 2  # reads and writes, sent in one pipeline


def test_the_number_function_is_inlined_so_range_indexes_cost_no_function_call(
    big_store: psycopg.Connection[Any],
) -> None:
    # A SQL function PostgreSQL cannot inline runs its executor per row (~12 us, on every put
    # of a range-indexed store); inlined, the plan shows its CASE expression instead of a call.
    row = big_store.execute(
        "EXPLAIN (VERBOSE, FORMAT JSON) SELECT store_jsonb_number(value -> 'n') FROM store"
    ).fetchone()
    assert row is not None
    output = " ".join(row[0][0]["Plan"]["Output"])
    assert "store_jsonb_number(" not in output
    assert "CASE WHEN ((jsonb_typeof" in output
