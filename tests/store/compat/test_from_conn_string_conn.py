"""What a store's `from_conn_string(dsn)` hands over, used exactly as the official store's is.

Each test runs the official store and ours side by side on the same schema: by default one
psycopg connection (``store.conn``) that user code may pipeline, query and inspect; with the
official ``pool_config=`` option, a connection pool.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from langgraph.store.postgres import PostgresStore as OfficialStore
from langgraph.store.postgres.aio import AsyncPostgresStore as OfficialAsyncStore
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from store import AsyncPostgresStore, PostgresStore

pytestmark = pytest.mark.nocitus("the official store cannot write to distributed tables")

SYNC: dict[str, Any] = {"official": OfficialStore, "ours": PostgresStore}
ASYNC: dict[str, Any] = {"official": OfficialAsyncStore, "ours": AsyncPostgresStore}
BOTH = pytest.mark.parametrize("package", ["official", "ours"])


def _setup(package: str, dsn: str) -> None:
    with SYNC[package].from_conn_string(dsn) as store:
        store.setup()


@BOTH
def test_conn_is_one_psycopg_connection(package: str, dsn: str) -> None:
    with SYNC[package].from_conn_string(dsn) as store:
        assert type(store.conn) is psycopg.Connection
        assert store.conn.info.dbname == psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        assert store.conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}


@BOTH
async def test_async_conn_is_one_psycopg_async_connection(package: str, dsn: str) -> None:
    async with ASYNC[package].from_conn_string(dsn) as store:
        assert type(store.conn) is psycopg.AsyncConnection
        cur = await store.conn.execute("SELECT 1 AS one")
        assert await cur.fetchone() == {"one": 1}


@BOTH
def test_store_on_its_connection_in_pipeline_mode_reads_its_writes(package: str, dsn: str) -> None:
    with SYNC[package].from_conn_string(dsn) as store:
        store.setup()
        with store.conn.pipeline() as pipe:
            store.pipe = pipe
            store.put(("docs",), "k", {"v": package})
            item = store.get(("docs",), "k")
            assert item is not None
            assert item.value == {"v": package}


@BOTH
def test_from_conn_string_pipeline_true_pipelines_its_connection(package: str, dsn: str) -> None:
    _setup(package, dsn)
    with SYNC[package].from_conn_string(dsn, pipeline=True) as store:
        assert store.pipe is not None
        store.put(("docs",), "p", {"v": 1})
        assert [i.key for i in store.search(("docs",))] == ["p"]


@BOTH
def test_pool_config_gives_a_pool_of_that_size(package: str, dsn: str) -> None:
    _setup(package, dsn)
    with SYNC[package].from_conn_string(dsn, pool_config={"min_size": 1, "max_size": 3}) as store:
        assert isinstance(store.conn, ConnectionPool)
        assert store.conn.max_size == 3
        store.put(("docs",), "k", {"v": 1})
        with store.conn.connection() as conn:
            assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}


@BOTH
async def test_async_pool_config_gives_a_pool(package: str, dsn: str) -> None:
    _setup(package, dsn)
    async with ASYNC[package].from_conn_string(dsn, pool_config={"max_size": 2}) as store:
        assert isinstance(store.conn, AsyncConnectionPool)
        await store.aput(("docs",), "k", {"v": 1})
        assert (await store.aget(("docs",), "k")) is not None


def test_pool_config_kwargs_are_laid_over_ours(dsn: str) -> None:
    with PostgresStore.from_conn_string(
        dsn, pool_config={"max_size": 2, "kwargs": {"prepare_threshold": None}}
    ) as store:
        assert isinstance(store.conn, ConnectionPool)
        with store.conn.connection() as conn:
            assert conn.prepare_threshold is None
            assert conn.autocommit


def test_pool_config_passes_other_pool_arguments_to_the_pool(dsn: str) -> None:
    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET application_name = 'configured'")

    with PostgresStore.from_conn_string(
        dsn, pool_config={"timeout": 3.5, "name": "mine", "configure": configure}
    ) as store:
        assert isinstance(store.conn, ConnectionPool)
        assert (store.conn.timeout, store.conn.name, store.conn.max_size) == (3.5, "mine", 10)
        with store.conn.connection() as conn:
            assert conn.info.parameter_status("application_name") == "configured"


@pytest.mark.timeout(60)
def test_default_store_serves_many_threads_at_once(dsn: str) -> None:
    _setup("ours", dsn)
    with PostgresStore.from_conn_string(dsn) as store:

        def put_and_get(i: int) -> Any:
            store.put(("threads", str(i)), "k", {"i": i})
            item = store.get(("threads", str(i)), "k")
            return None if item is None else item.value

        with ThreadPoolExecutor(16) as ex:
            assert list(ex.map(put_and_get, range(16))) == [{"i": i} for i in range(16)]


@pytest.mark.timeout(60)
async def test_default_async_store_serves_many_tasks_at_once(dsn: str) -> None:
    _setup("ours", dsn)
    async with AsyncPostgresStore.from_conn_string(dsn) as store:

        async def put_and_get(i: int) -> Any:
            await store.aput(("tasks", str(i)), "k", {"i": i})
            item = await store.aget(("tasks", str(i)), "k")
            return None if item is None else item.value

        results = await asyncio.gather(*(put_and_get(i) for i in range(32)))
        assert results == [{"i": i} for i in range(32)]
