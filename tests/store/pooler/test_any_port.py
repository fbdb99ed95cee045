"""The store through a transaction pooler on any port, with no configuration.

PgBouncer listens on a port of its own: nothing in the DSN says "pooler". The store's pool
switches to unprepared statements at the pooler's first prepared-statement error, with one
WARNING naming ``pooler=True``, and the batch runs again: every batch succeeds.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from langgraph.store.base import GetOp, PutOp, SearchOp

from store import AsyncPostgresStore, PostgresStore
from tests.support.pooler import (
    CLIENTS,
    any_port_dsn,
    in_threads,
    one_server_dsn,
    pooler_warnings,
)

__all__ = ["any_port_dsn", "one_server_dsn"]  # fixtures

BATCHES = 10


def set_up(dsn: str) -> None:
    with PostgresStore.from_conn_string(dsn) as store:
        store.setup()


def batches(store: PostgresStore, owner: str) -> None:
    for n in range(BATCHES):
        ns = (owner, f"b{n}")
        store.batch([PutOp(ns, f"k{k}", {"owner": owner, "n": k}) for k in range(3)])
        got, found = store.batch([GetOp(ns, "k1"), SearchOp(ns, {"n": 2})])
        assert got is not None
        assert got.value == {"owner": owner, "n": 1}
        assert [it.key for it in found] == ["k2"]  # type: ignore[union-attr]


def test_store_batches_from_many_threads_all_succeed(
    any_port_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    set_up(database_dsn)
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        PostgresStore.from_conn_string(any_port_dsn, pool_config={"max_size": CLIENTS}) as store,
    ):
        in_threads(CLIENTS, lambda i: batches(store, f"t{i}"))
    assert len(pooler_warnings(caplog.records)) == 1


async def test_async_store_batches_from_many_tasks_all_succeed(
    any_port_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    set_up(database_dsn)

    async def client(store: AsyncPostgresStore, owner: str) -> None:
        for n in range(BATCHES):
            ns = (owner, f"b{n}")
            await store.abatch([PutOp(ns, f"k{k}", {"n": k}) for k in range(3)])
            got = await store.abatch([GetOp(ns, f"k{k}") for k in range(3)])
            assert [g.value["n"] for g in got] == [0, 1, 2]  # type: ignore[union-attr]

    with caplog.at_level("WARNING", logger="checkpoint_pg"):
        async with AsyncPostgresStore.from_conn_string(
            any_port_dsn, pool_config={"max_size": CLIENTS}
        ) as store:
            await asyncio.gather(*(client(store, f"a{i}") for i in range(CLIENTS)))
    assert len(pooler_warnings(caplog.records)) == 1


def test_store_with_pooler_false_lets_the_error_surface(
    one_server_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    set_up(database_dsn)
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        PostgresStore.from_conn_string(one_server_dsn, pooler=False) as first,
        PostgresStore.from_conn_string(one_server_dsn, pooler=False) as second,
    ):
        batches(first, "a")  # prepares its statements (_pg3_0...) on the one server connection
        with pytest.raises(psycopg.Error, match='prepared statement "_pg3_'):
            batches(second, "b")
    assert pooler_warnings(caplog.records) == []
