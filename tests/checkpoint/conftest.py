"""Savers in every shape a user can build one: sync or async, over a connection, a pool or a
pipeline. Tests take `saver` (async-facing) and run against all six.

``CHECKPOINT_PG_TEST_PARTITIONS=N`` runs the tests on hash-partitioned checkpoint tables: before
a test that takes `dsn` starts, its schema gets the tables set up with
``partitions=N``, so every `setup()` the test makes finds them. This applies to every folder
under tests/checkpoint.

``CHECKPOINT_PG_TEST_STORAGE=delta`` builds the savers of the `saver` fixture (all six shapes)
and of tests/checkpoint/test_graphs.py with ``storage="delta"``: the same specifications, met
in delta storage."""

from __future__ import annotations

import os
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


PARTITIONS_ENV = "CHECKPOINT_PG_TEST_PARTITIONS"
STORAGE_ENV = "CHECKPOINT_PG_TEST_STORAGE"


def test_storage() -> str:
    """The saver storage mode `CHECKPOINT_PG_TEST_STORAGE` asks for ("official" by default)."""
    return os.environ.get(STORAGE_ENV, "").strip() or "official"


test_storage.__test__ = False  # type: ignore[attr-defined]


def test_partitions() -> int | None:
    """The partition count `CHECKPOINT_PG_TEST_PARTITIONS` asks for, or None."""
    value = os.environ.get(PARTITIONS_ENV, "").strip()
    return int(value) if value else None


test_partitions.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def partitioned_tables(request: pytest.FixtureRequest) -> None:
    """With `CHECKPOINT_PG_TEST_PARTITIONS` set, the test's tables are partitioned in advance.

    Tests marked ``unpartitioned`` (see the marker's description in pyproject.toml) keep the
    plain schema."""
    partitions = test_partitions()
    if partitions is None or request.node.get_closest_marker("unpartitioned") is not None:
        return
    if "dsn" in request.fixturenames:
        with psycopg.connect(request.getfixturevalue("dsn"), autocommit=True) as conn:
            PostgresSaver(conn, partitions=partitions).setup()


@pytest.fixture(autouse=True)
def distributed_tables(request: pytest.FixtureRequest) -> None:
    """On a Citus cluster (``CHECKPOINT_PG_TEST_CITUS_DSN``), the test's tables are set up and
    distributed by thread_id in advance, so every `setup()` the test makes finds them sharded.

    Tests marked ``nocitus`` (see the marker's description in pyproject.toml) skip there."""
    if request.getfixturevalue("pg_server").source != "citus":
        return
    if request.node.get_closest_marker("nocitus") is not None:
        return  # skipped (tests/conftest.py)
    if request.node.get_closest_marker("unpartitioned") is not None:
        return  # it sets its tables up itself (on Citus: local, undistributed tables)
    if "dsn" in request.fixturenames:
        with psycopg.connect(request.getfixturevalue("dsn"), autocommit=True) as conn:
            PostgresSaver(conn).setup(distributed=True)


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
            s = PostgresSaver(pool, storage=test_storage())
            s.setup()
            yield s
        return
    with psycopg.connect(dsn) as conn:  # deliberately not autocommit
        if how == "pipeline":
            PostgresSaver(conn, storage=test_storage()).setup()
            with conn.pipeline() as pipe:
                yield PostgresSaver(conn, pipe, storage=test_storage())
        else:
            s = PostgresSaver(conn, storage=test_storage())
            s.setup()
            yield s


@asynccontextmanager
async def _async_saver(dsn: str, how: str) -> AsyncIterator[AsyncPostgresSaver]:
    if how == "pool":
        kwargs: dict[str, Any] = {"autocommit": True}
        async with AsyncConnectionPool(
            dsn, min_size=1, max_size=4, kwargs=kwargs, open=False
        ) as pool:
            s = AsyncPostgresSaver(pool, storage=test_storage())
            await s.setup()
            yield s
        return
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if how == "pipeline":
            await AsyncPostgresSaver(conn, storage=test_storage()).setup()
            async with conn.pipeline() as pipe:
                yield AsyncPostgresSaver(conn, pipe, storage=test_storage())
        else:
            s = AsyncPostgresSaver(conn, storage=test_storage())
            await s.setup()
            yield s
