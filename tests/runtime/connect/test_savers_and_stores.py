"""A DSN that cannot connect fails at once with the server's reason, whatever opens it.

`from_conn_string` (pooled or pipelined, sync or async, saver or store) probes one connection
before it builds a pool; a pool the caller made is probed on its first use.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg.errors import ConnectionFailedError, PoolExhaustedError
from store import AsyncPostgresStore, PostgresStore
from tests.support.connect import BadDsn, assert_reported

SYNC = {"saver": PostgresSaver, "store": PostgresStore}
ASYNC = {"saver": AsyncPostgresSaver, "store": AsyncPostgresStore}


@pytest.mark.parametrize("kind", ["saver", "store"])
def test_from_conn_string_fails_at_once_with_the_reason(bad_dsn: BadDsn, kind: str) -> None:
    started = time.monotonic()
    with (
        pytest.raises(ConnectionFailedError) as caught,
        SYNC[kind].from_conn_string(bad_dsn.dsn) as s,
    ):
        s.setup()
    assert_reported(caught.value, bad_dsn, time.monotonic() - started)


@pytest.mark.parametrize("kind", ["saver", "store"])
async def test_async_from_conn_string_fails_at_once_with_the_reason(
    bad_dsn: BadDsn, kind: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught:
        async with ASYNC[kind].from_conn_string(bad_dsn.dsn) as opened:
            await opened.setup()
    assert_reported(caught.value, bad_dsn, time.monotonic() - started)


def test_a_pipelined_saver_fails_at_once_with_the_reason(bad_dsn: BadDsn) -> None:
    started = time.monotonic()
    opened = PostgresSaver.from_conn_string(bad_dsn.dsn, pipeline=True)
    with pytest.raises(ConnectionFailedError) as caught, opened as saver:
        saver.setup()
    assert_reported(caught.value, bad_dsn, time.monotonic() - started)


async def test_an_async_pipelined_saver_fails_at_once_with_the_reason(bad_dsn: BadDsn) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught:
        async with AsyncPostgresSaver.from_conn_string(bad_dsn.dsn, pipeline=True) as saver:
            await saver.setup()
    assert_reported(caught.value, bad_dsn, time.monotonic() - started)


@pytest.mark.parametrize("kind", ["saver", "store"])
def test_a_callers_pool_fails_on_first_use_with_the_reason(bad_dsn: BadDsn, kind: str) -> None:
    started = time.monotonic()
    pool = ConnectionPool(bad_dsn.dsn, min_size=1, open=True, timeout=30)
    with pool, pytest.raises(ConnectionFailedError) as caught:
        SYNC[kind](pool).setup()
    assert_reported(caught.value, bad_dsn, time.monotonic() - started)


@pytest.mark.parametrize("kind", ["saver", "store"])
async def test_a_callers_async_pool_fails_on_first_use_with_the_reason(
    bad_dsn: BadDsn, kind: str
) -> None:
    started = time.monotonic()
    async with AsyncConnectionPool(bad_dsn.dsn, min_size=1, open=False, timeout=30) as pool:
        with pytest.raises(ConnectionFailedError) as caught:
            await ASYNC[kind](pool).setup()
    assert_reported(caught.value, bad_dsn, time.monotonic() - started)


def test_a_pool_that_really_is_exhausted_still_says_so(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=1, max_size=1, timeout=0.5, kwargs=_auto()) as pool:
        saver = PostgresSaver(pool)
        saver.setup()
        with pool.connection(), pytest.raises(PoolExhaustedError):
            saver.get_tuple({"configurable": {"thread_id": "t"}})


async def test_an_async_pool_that_really_is_exhausted_still_says_so(dsn: str) -> None:
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=1, timeout=0.5, kwargs=_auto(), open=False
    ) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        async with pool.connection():
            with pytest.raises(PoolExhaustedError):
                await saver.aget_tuple({"configurable": {"thread_id": "t"}})


def test_a_good_dsn_still_opens(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn) as saver, PostgresStore.from_conn_string(dsn) as st:
        saver.setup()
        st.setup()
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None


def _auto() -> dict[str, Any]:
    return {"autocommit": True}


def _refuse_new_connections(database_dsn: str, allow: bool) -> None:
    dbname = conninfo_to_dict(database_dsn)["dbname"]
    with psycopg.connect(make_conninfo(database_dsn, dbname="postgres"), autocommit=True) as c:
        c.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(str(dbname)), sql.Literal(allow)
            )
        )


def test_a_pool_timeout_is_diagnosed_as_the_connection_failure_it_hides(
    database_dsn: str,
) -> None:
    pool = ConnectionPool(database_dsn, min_size=1, max_size=3, timeout=1, kwargs=_auto())
    with pool:
        saver = PostgresSaver(pool)
        saver.setup()
        _refuse_new_connections(database_dsn, allow=False)
        # Every connection the pool has is busy: the next operation needs a new one.
        held = [pool.getconn() for _ in range(pool.get_stats()["pool_size"])]
        try:
            with pytest.raises(ConnectionFailedError) as caught:
                saver.get_tuple({"configurable": {"thread_id": "t"}})
        finally:
            _refuse_new_connections(database_dsn, allow=True)
            for conn in held:
                pool.putconn(conn)
    assert "not currently accepting connections" in caught.value.reason


async def test_an_async_pool_timeout_is_diagnosed_as_the_connection_failure_it_hides(
    database_dsn: str,
) -> None:
    pool = AsyncConnectionPool(
        database_dsn, min_size=1, max_size=3, timeout=1, kwargs=_auto(), open=False
    )
    async with pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        _refuse_new_connections(database_dsn, allow=False)
        held = [await pool.getconn() for _ in range(pool.get_stats()["pool_size"])]
        try:
            with pytest.raises(ConnectionFailedError) as caught:
                await saver.aget_tuple({"configurable": {"thread_id": "t"}})
        finally:
            _refuse_new_connections(database_dsn, allow=True)
            for conn in held:
                await pool.putconn(conn)
    assert "not currently accepting connections" in caught.value.reason
