"""Stores in every shape a user can build one: sync or async, over a connection or a pool.

Tests take `store` and use the async methods (aget, aput, asearch, …); for the sync store those
run its blocking `batch` in a worker thread, so one test body covers both.

On a Citus cluster (``CHECKPOINT_PG_TEST_CITUS_DSN``, tests/support/citus.py) every test that
takes `dsn` finds its schema's store tables already distributed (``setup(distributed=True)``),
so each `setup()` it makes, and every statement after, runs on sharded tables. Tests marked
``nocitus`` (see the marker's description in pyproject.toml) skip there, saying why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import pytest
from langgraph.store.base import BaseStore
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from store import AsyncPostgresStore, PostgresStore
from tests.harness import TestServer

SHAPES = ["sync-conn", "sync-pool", "async-conn", "async-pool"]


@pytest.fixture(autouse=True)
def distributed_tables(request: pytest.FixtureRequest, pg_server: TestServer) -> None:
    """On a Citus cluster, the test's store tables are distributed in advance."""
    if pg_server.source != "citus" or request.node.get_closest_marker("nocitus") is not None:
        return
    if "dsn" in request.fixturenames:
        with psycopg.connect(request.getfixturevalue("dsn"), autocommit=True) as conn:
            PostgresStore(conn).setup(distributed=True)


@contextmanager
def sync_store(dsn: str, how: str, **kwargs: Any) -> Iterator[PostgresStore]:
    if how == "pool":
        with ConnectionPool(dsn, min_size=1, max_size=4, open=False) as pool:
            store = PostgresStore(pool, **kwargs)
            store.setup()
            yield store
        return
    with psycopg.connect(dsn) as conn:  # deliberately not autocommit
        store = PostgresStore(conn, **kwargs)
        store.setup()
        yield store


@asynccontextmanager
async def async_store(dsn: str, how: str, **kwargs: Any) -> AsyncIterator[AsyncPostgresStore]:
    if how == "pool":
        async with AsyncConnectionPool(
            dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
        ) as pool:
            store = AsyncPostgresStore(pool, **kwargs)
            await store.setup()
            yield store
        return
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        store = AsyncPostgresStore(conn, **kwargs)
        await store.setup()
        yield store


@pytest.fixture(params=SHAPES)
async def store(request: pytest.FixtureRequest, dsn: str) -> AsyncIterator[BaseStore]:
    kind, _, how = str(request.param).partition("-")
    if kind == "sync":
        with sync_store(dsn, how) as s:
            yield s
    else:
        async with async_store(dsn, how) as a:
            yield a
