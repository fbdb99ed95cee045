"""Savers in every shape a user can build one: sync or async, over a connection, a pool or a
pipeline. Tests take `saver` (async-facing) and run against all six."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from tests.checkpoint.facade import AsyncFacade, SyncAsAsync

SHAPES = [
    "sync-conn",
    "sync-pool",
    "sync-pipeline",
    "async-conn",
    "async-pool",
    "async-pipeline",
]


@pytest.fixture
def sync_saver(dsn: str) -> Iterator[PostgresSaver]:
    """A sync saver on a plain connection, tables set up."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        yield saver


@pytest.fixture(params=SHAPES)
async def saver(request: pytest.FixtureRequest, dsn: str) -> AsyncIterator[AsyncFacade]:
    shape: str = request.param
    kind, _, how = shape.partition("-")
    if kind == "sync":
        with _sync_saver(dsn, how) as s:
            yield SyncAsAsync(s)
    else:
        async with _async_saver(dsn, how) as a:
            yield a  # type: ignore[misc]


from contextlib import asynccontextmanager, contextmanager  # noqa: E402


@contextmanager
def _sync_saver(dsn: str, how: str) -> Iterator[PostgresSaver]:
    if how == "pool":
        with ConnectionPool(dsn, min_size=1, max_size=4, open=False) as pool:
            s = PostgresSaver(pool)
            s.setup()
            yield s
        return
    with psycopg.connect(dsn) as conn:  # deliberately not autocommit
        if how == "pipeline":
            PostgresSaver(conn).setup()
            with conn.pipeline() as pipe:
                yield PostgresSaver(conn, pipe)
        else:
            s = PostgresSaver(conn)
            s.setup()
            yield s


@asynccontextmanager
async def _async_saver(dsn: str, how: str) -> AsyncIterator[AsyncPostgresSaver]:
    if how == "pool":
        kwargs: dict[str, Any] = {"autocommit": True}
        async with AsyncConnectionPool(
            dsn, min_size=1, max_size=4, kwargs=kwargs, open=False
        ) as pool:
            s = AsyncPostgresSaver(pool)
            await s.setup()
            yield s
        return
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if how == "pipeline":
            await AsyncPostgresSaver(conn).setup()
            async with conn.pipeline() as pipe:
                yield AsyncPostgresSaver(conn, pipe)
        else:
            s = AsyncPostgresSaver(conn)
            await s.setup()
            yield s
