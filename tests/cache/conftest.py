"""Caches in every shape a user can build one: sync or async, over a connection or a pool.

Tests take `cache` and use the async methods (aget, aset, aclear, asweep); for the blocking
cache those run its blocking twins in a worker thread, so one test body covers both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from checkpoint_pg.cache import AsyncPostgresCache, PostgresCache

SHAPES = ["sync-conn", "sync-pool", "async-conn", "async-pool"]


@pytest.fixture(params=SHAPES)
async def cache(request: pytest.FixtureRequest, dsn: str) -> AsyncIterator[Any]:
    kind, _, how = str(request.param).partition("-")
    if kind == "sync":
        if how == "pool":
            with ConnectionPool(dsn, min_size=1, max_size=4, open=False) as pool:
                sync_cache: PostgresCache[Any] = PostgresCache(pool)
                sync_cache.setup()
                yield sync_cache
            return
        with psycopg.connect(dsn) as conn:  # deliberately not autocommit
            sync_cache = PostgresCache(conn)
            sync_cache.setup()
            yield sync_cache
        return
    if how == "pool":
        async with AsyncConnectionPool(
            dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
        ) as apool:
            async_cache: AsyncPostgresCache[Any] = AsyncPostgresCache(apool)
            await async_cache.setup()
            yield async_cache
        return
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
        async_cache = AsyncPostgresCache(aconn)
        await async_cache.setup()
        yield async_cache
