"""TTL: expiry is exact, never outlived, refreshed on read when asked, swept in bounded batches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from store import AsyncPostgresStore, PostgresStore


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


def _store(conn: psycopg.Connection[Any], **ttl: Any) -> PostgresStore:
    s = PostgresStore(conn, ttl=ttl or None)  # type: ignore[arg-type]
    s.setup()
    return s


def _expire(conn: psycopg.Connection[Any], key: str) -> None:
    """Move an item's expiry into the past, as time would."""
    conn.execute("UPDATE store SET expires_at = now() - interval '1 second' WHERE key = %s", (key,))


def _seconds_left(conn: psycopg.Connection[Any], key: str) -> float:
    row = conn.execute(
        "SELECT extract(epoch FROM expires_at - updated_at) FROM store WHERE key = %s", (key,)
    ).fetchone()
    assert row is not None
    return float(row[0])


def test_default_ttl_applies_to_puts_without_one(conn: psycopg.Connection[Any]) -> None:
    store = _store(conn, default_ttl=2)
    store.put(("t",), "k", {"v": 1})
    assert _seconds_left(conn, "k") == pytest.approx(120, abs=1)


def test_fractional_minutes_are_kept_exactly(conn: psycopg.Connection[Any]) -> None:
    store = _store(conn)
    store.put(("t",), "k", {"v": 1}, ttl=0.25)
    assert _seconds_left(conn, "k") == pytest.approx(15, abs=0.5)
    conn.execute("UPDATE store SET expires_at = now() + interval '1 second' WHERE key = 'k'")
    store.get(("t",), "k", refresh_ttl=True)
    row = conn.execute(
        "SELECT extract(epoch FROM expires_at - now()) FROM store WHERE key = 'k'"
    ).fetchone()
    assert row is not None
    assert float(row[0]) == pytest.approx(15, abs=1)


def test_an_expired_item_is_never_returned_even_before_a_sweep(
    conn: psycopg.Connection[Any],
) -> None:
    store = _store(conn)
    store.put(("t",), "old", {"v": 1}, ttl=1)
    store.put(("t",), "new", {"v": 2}, ttl=1)
    _expire(conn, "old")
    assert store.get(("t",), "old") is None
    assert [i.key for i in store.search(("t",))] == ["new"]
    store.put(("gone",), "old", {"v": 1}, ttl=1)
    _expire(conn, "old")
    assert ("gone",) not in store.list_namespaces()


def test_reading_refreshes_the_expiry_when_refresh_on_read(conn: psycopg.Connection[Any]) -> None:
    store = _store(conn, default_ttl=10, refresh_on_read=True)
    store.put(("t",), "k", {"v": 1})
    conn.execute("UPDATE store SET expires_at = now() + interval '5 seconds'")
    store.search(("t",))
    assert _seconds_left(conn, "k") > 500


def test_reading_without_refresh_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    store = _store(conn, default_ttl=10, refresh_on_read=False)
    store.put(("t",), "k", {"v": 1})
    conn.execute("UPDATE store SET expires_at = now() + interval '5 seconds'")
    store.get(("t",), "k")
    store.search(("t",))
    row = conn.execute("SELECT expires_at - now() < interval '6 seconds' FROM store").fetchone()
    assert row == (True,)


def test_reads_without_refresh_work_in_a_read_only_transaction(dsn: str) -> None:
    """As on a read-only replica: no write may be attempted."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        _store(conn).put(("t",), "k", {"v": 1}, ttl=5)
    with psycopg.connect(dsn, autocommit=True) as ro:
        ro.execute("SET default_transaction_read_only = on")
        store = PostgresStore(ro)
        assert store.get(("t",), "k", refresh_ttl=False) is not None
        assert len(store.search(("t",), refresh_ttl=False)) == 1
        assert store.list_namespaces() == [("t",)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            store.get(("t",), "k", refresh_ttl=True)


def test_sweep_deletes_only_expired_items_in_bounded_batches(
    conn: psycopg.Connection[Any],
) -> None:
    store = _store(conn)
    for i in range(25):
        store.put(("t",), f"old{i}", {"v": i}, ttl=1)
    store.put(("t",), "live", {"v": 1}, ttl=1)
    store.put(("t",), "forever", {"v": 1})
    conn.execute("UPDATE store SET expires_at = now() - interval '1 second' WHERE key LIKE 'old%'")
    assert store.sweep_ttl(batch_size=10) == 25
    keys = {r[0] for r in conn.execute("SELECT key FROM store").fetchall()}
    assert keys == {"live", "forever"}


def test_several_sweepers_at_once_delete_each_item_once(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = _store(conn)
        store.batch_size = 0  # type: ignore[attr-defined]
        for i in range(300):
            store.put(("t",), f"k{i}", {"v": i}, ttl=1)
        conn.execute("UPDATE store SET expires_at = now() - interval '1 second'")
    barrier = threading.Barrier(4)

    def sweep(_: int) -> int:
        with psycopg.connect(dsn, autocommit=True) as c:
            barrier.wait()
            return PostgresStore(c).sweep_ttl(batch_size=20)

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(sweep, range(4)))
    assert sum(counts) == 300


def test_the_sweeper_thread_starts_and_stops(conn: psycopg.Connection[Any]) -> None:
    store = _store(conn, sweep_interval_minutes=0.001)
    store.put(("t",), "k", {"v": 1}, ttl=1)
    _expire(conn, "k")
    store.start_ttl_sweeper()
    for _ in range(100):
        row = conn.execute("SELECT count(*) FROM store").fetchone()
        if row == (0,):
            break
        threading.Event().wait(0.05)
    assert store.stop_ttl_sweeper(timeout=5)
    assert conn.execute("SELECT count(*) FROM store").fetchone() == (0,)


async def test_the_async_sweeper_task_starts_and_stops(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
        store = AsyncPostgresStore(aconn, ttl={"sweep_interval_minutes": 0.001})
        await store.setup()
        await store.aput(("t",), "k", {"v": 1}, ttl=1)
        await aconn.execute("UPDATE store SET expires_at = now() - interval '1 second'")
        await store.start_ttl_sweeper()
        for _ in range(100):
            cur = await aconn.execute("SELECT count(*) FROM store")
            if await cur.fetchone() == (0,):
                break
            await asyncio.sleep(0.05)
        assert await store.stop_ttl_sweeper(timeout=5)
        cur = await aconn.execute("SELECT count(*) FROM store")
        assert await cur.fetchone() == (0,)
