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
            blocker.execute("SELECT 1 FROM store WHERE key = 'stuck' FOR UPDATE").fetchall()
            with ThreadPoolExecutor(1) as ex:
                pending = ex.submit(store.put, ("a",), "stuck", {"v": 2})
                assert store.get(("a",), "free") is not None
                assert not pending.done()
                blocker.rollback()
                pending.result(timeout=10)
        item = store.get(("a",), "stuck")
        assert item is not None
        assert item.value == {"v": 2}


def test_using_the_store_before_setup_says_to_call_setup(dsn: str) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        pytest.raises(SchemaNotReadyError, match="call setup"),
    ):
        PostgresStore(conn).get(("a",), "k")


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
