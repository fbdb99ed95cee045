"""`setup()` of the cache: idempotent, safe under concurrency, UNLOGGED on request."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest

from checkpoint_pg.cache import AsyncPostgresCache, PostgresCache
from checkpoint_pg.errors import ConnectionFailedError, InvalidConfigError, SchemaNotReadyError
from tests.support.connect import SECRET, BadDsn


def _persistence(dsn: str, table: str = "checkpoint_cache") -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT relpersistence FROM pg_class WHERE oid = to_regclass(%s)", (table,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_setup_twice_changes_nothing(dsn: str) -> None:
    with PostgresCache.from_conn_string(dsn) as cache:
        cache.setup()
        cache.set({(("n",), "k"): ("v", None)})
        cache.setup()
        assert cache.get([(("n",), "k")]) == {(("n",), "k"): "v"}
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT v FROM checkpoint_cache_migrations ORDER BY v").fetchall()
    versions = [row[0] for row in rows]
    assert versions == [1, 2]


def test_setup_from_many_threads_at_once_creates_the_table_once(dsn: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        try:
            with PostgresCache.from_conn_string(dsn) as cache:
                barrier.wait()
                cache.setup()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _persistence(dsn) == "p"


def test_the_table_is_ordinary_unless_unlogged_is_asked(dsn: str) -> None:
    with PostgresCache.from_conn_string(dsn) as cache:
        cache.setup()
    assert _persistence(dsn) == "p"


def test_unlogged_true_creates_an_unlogged_table(dsn: str) -> None:
    with PostgresCache.from_conn_string(dsn, unlogged=True) as cache:
        cache.setup()
    assert _persistence(dsn) == "u"


def test_unlogged_switches_an_existing_table_both_ways_keeping_its_entries(dsn: str) -> None:
    with PostgresCache.from_conn_string(dsn) as cache:
        cache.setup()
        cache.set({(("n",), "k"): ("v", None)})
    with PostgresCache.from_conn_string(dsn, unlogged=True) as cache:
        cache.setup()
        assert _persistence(dsn) == "u"
        assert cache.get([(("n",), "k")]) == {(("n",), "k"): "v"}
    with PostgresCache.from_conn_string(dsn, unlogged=False) as cache:
        cache.setup()
        assert _persistence(dsn) == "p"


def test_unlogged_none_leaves_an_unlogged_table_as_it_is(dsn: str) -> None:
    with PostgresCache.from_conn_string(dsn, unlogged=True) as cache:
        cache.setup()
    with PostgresCache.from_conn_string(dsn) as cache:
        cache.setup()
    assert _persistence(dsn) == "u"


def test_schema_puts_the_table_in_that_schema(dsn: str) -> None:
    with PostgresCache.from_conn_string(dsn, schema="node cache") as cache:
        cache.setup()
        cache.set({(("n",), "k"): (1, None)})
    assert _persistence(dsn, '"node cache".checkpoint_cache') == "p"


def test_a_cache_used_before_setup_says_to_run_setup(dsn: str) -> None:
    with PostgresCache.from_conn_string(dsn) as cache, pytest.raises(SchemaNotReadyError):
        cache.get([(("n",), "k")])


@pytest.mark.parametrize(
    "kwargs",
    [{"unlogged": "yes"}, {"schema": ""}, {"schema": "x" * 64}],
    ids=["unlogged-str", "schema-empty", "schema-long"],
)
def test_bad_options_are_refused_by_name(dsn: str, kwargs: dict[str, Any]) -> None:
    with psycopg.connect(dsn) as conn, pytest.raises(InvalidConfigError):
        PostgresCache(conn, **kwargs)


def test_a_dsn_that_cannot_connect_fails_at_once_saying_why_without_its_password(
    bad_dsn: BadDsn,
) -> None:
    opening = PostgresCache.from_conn_string(bad_dsn.dsn)
    with pytest.raises(ConnectionFailedError) as failed, opening:
        pass
    assert bad_dsn.reason in str(failed.value)
    assert SECRET not in str(failed.value)


async def test_a_blocking_call_on_the_async_caches_own_loop_says_what_to_await(dsn: str) -> None:
    async with AsyncPostgresCache.from_conn_string(dsn) as cache:
        await cache.setup()
        with pytest.raises(asyncio.InvalidStateError, match=r"await cache\.aget"):
            cache.get([(("n",), "k")])


def test_get_and_set_of_many_keys_are_one_statement_each(dsn: str) -> None:
    executed: list[str] = []

    class Counting(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
            executed.append(str(query))
            return super().execute(query, params, **kwargs)

    with psycopg.connect(dsn, autocommit=True, cursor_factory=Counting) as conn:
        cache: PostgresCache[Any] = PostgresCache(conn)
        cache.setup()
        keys = [(("ns", str(i % 3)), f"k{i}") for i in range(50)]
        executed.clear()
        cache.set({k: (i, 60) for i, k in enumerate(keys)})
        assert len(executed) == 1
        executed.clear()
        assert len(cache.get(keys)) == 50
        assert len(executed) == 1
