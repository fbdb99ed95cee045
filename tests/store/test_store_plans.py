"""At 200,000 items, filtered searches are index-served (plan shape, never a time), and a batch
of any mix of ops is a constant number of statements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import pytest
from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp

from checkpoint_pg.testing import DatabaseFactory
from store import PostgresStore
from store._batch import plan_batch
from store._sql import names_for

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
    query = plan_batch([op], names_for(None), None)._reads([], exact=set())
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
    assert "store_jsonb_number" not in output
    assert "CASE jsonb_typeof" in output
