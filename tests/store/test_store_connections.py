"""The store with the connections users hand over: pools run concurrently, blocking calls
from other threads work, misuse is refused clearly."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from checkpoint_pg import SchemaNotReadyError
from store import AsyncPostgresStore, PostgresStore


def test_a_pool_does_not_serialise_operations(dsn: str) -> None:
    """A put stuck behind a row lock must not block another thread's read."""
    with ConnectionPool(
        dsn, min_size=2, max_size=4, open=False, kwargs={"autocommit": True}
    ) as pool:
        store = PostgresStore(pool)
        store.setup()
        store.put(("a",), "stuck", {"v": 1})
        store.put(("a",), "free", {"v": 1})
        with psycopg.connect(dsn) as blocker:
            locked = "SELECT 1 FROM store WHERE prefix = 'a' AND key = 'stuck' FOR UPDATE"
            blocker.execute(locked).fetchall()
            with ThreadPoolExecutor(1) as ex:
                pending = ex.submit(store.put, ("a",), "stuck", {"v": 2})
                assert store.get(("a",), "free") is not None
                assert not pending.done()
                blocker.rollback()
                pending.result(timeout=10)
        item = store.get(("a",), "stuck")
        assert item is not None
        assert item.value == {"v": 2}


@pytest.mark.nocitus("needs the store tables absent; on Citus they are distributed before it")
def test_using_the_store_before_setup_says_to_call_setup(dsn: str) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        pytest.raises(SchemaNotReadyError, match="call setup"),
    ):
        PostgresStore(conn).get(("a",), "k")


@pytest.mark.timeout(30)
async def test_async_store_blocking_calls_work_from_another_thread(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        store = AsyncPostgresStore(conn)
        await store.setup()
        await asyncio.to_thread(store.put, ("a",), "k", {"v": 1})
        item = await asyncio.to_thread(store.get, ("a",), "k")
        assert item is not None
        assert item.value == {"v": 1}


async def test_async_store_blocking_calls_refuse_the_event_loop_thread(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        store = AsyncPostgresStore(conn)
        with pytest.raises(asyncio.InvalidStateError, match="different"):
            store.get(("a",), "k")


def test_the_constructor_refuses_what_is_not_a_psycopg_connection() -> None:
    with pytest.raises(TypeError, match="Connection or ConnectionPool"):
        PostgresStore("postgresql://localhost/db")  # type: ignore[arg-type]


def test_a_store_in_a_schema_with_quotes_in_its_name_sets_up_and_filters_ranges(
    dsn: str,
) -> None:
    # Its name reaches migrations as an identifier inside a function body: quoted, never
    # spliced; and its range index works where CREATE INDEX sees only pg_catalog (PG 17+).
    schema = "we\"ird's"
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, schema=schema, range_index_fields=["n"])
        store.setup()
        store.setup()  # again: nothing to do
        for n in (1, 7, "12", True):
            store.put(("q",), f"k{n}", {"n": n})
        found = store.search(("q",), filter={"n": {"$gt": 5}})
        assert sorted(i.key for i in found) == ["k12", "k7"]
        assert conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname LIKE %s",
            (schema, "store_range_%"),
        ).fetchone() == (1,)


def test_setup_moves_a_store_with_range_indexes_to_the_short_number_function(dsn: str) -> None:
    # A database set up by the previous version: the whole number function inline, its range
    # index built on it. setup() replaces the function; index and answers stay the same.
    from store._sql import OWN_MIGRATIONS, number_case, render_migration

    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, range_index_fields=["n"])
        store.setup()
        whole = render_migration(OWN_MIGRATIONS[4], None, number_case=number_case())
        conn.execute(whole)  # the whole function, inline
        conn.execute("DELETE FROM store_pg_migrations WHERE v >= 6")
        conn.execute("DROP FUNCTION store_jsonb_number_full(jsonb)")
        values = [1, 7, "12", True, 10**400, "1e400", None, "x", -2.5]
        for i, n in enumerate(values):
            store.put(("q",), f"k{i}", {"n": n})
        before = sorted(i.key for i in store.search(("q",), filter={"n": {"$gte": 1}}))
        store.setup()
        after = sorted(i.key for i in store.search(("q",), filter={"n": {"$gte": 1}}))
        assert after == before == ["k0", "k1", "k2", "k3", "k5"]
        (body,) = conn.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = 'store_jsonb_number'"
        ).fetchone() or ("",)
        assert "store_jsonb_number_full" in body
