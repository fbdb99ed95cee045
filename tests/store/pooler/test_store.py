"""The store through PgBouncer in transaction mode, with 8+ concurrent clients.

Each client owns a namespace and must read back exactly its own items: puts, gets, filtered
searches (equality and range, answered by prepared-looking plans elsewhere), namespace
listings and mixed batches, all at once.
"""

from __future__ import annotations

import asyncio

import pytest
from langgraph.store.base import GetOp, PutOp, SearchOp
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from store import AsyncPostgresStore, PostgresStore
from tests.support.pooler import CLIENTS, POOLED, in_threads

ITEMS = 12


def _put_ops(owner: str) -> list[PutOp]:
    return [
        PutOp((owner, "docs"), f"k{i}", {"owner": owner, "n": i, "even": i % 2 == 0})
        for i in range(ITEMS)
    ]


def check_store(store: PostgresStore, owner: str) -> None:
    for i in range(ITEMS):
        store.put((owner, "docs"), f"k{i}", {"owner": owner, "n": i, "even": i % 2 == 0})
    for i in range(ITEMS):
        item = store.get((owner, "docs"), f"k{i}")
        assert item is not None
        assert item.value == {"owner": owner, "n": i, "even": i % 2 == 0}
    evens = store.search((owner,), filter={"even": True}, limit=100)
    assert sorted(it.value["n"] for it in evens) == list(range(0, ITEMS, 2))
    big = store.search((owner,), filter={"n": {"$gte": 10}, "owner": owner}, limit=100)
    assert sorted(it.key for it in big) == ["k10", "k11"]
    assert {it.namespace for it in store.search((owner,), limit=100)} == {(owner, "docs")}
    assert store.list_namespaces(prefix=(owner,)) == [(owner, "docs")]
    got, searched, *_ = store.batch(
        [GetOp((owner, "docs"), "k3"), SearchOp((owner,), {"n": 5}), *_put_ops(owner)[:2]]
    )
    assert got is not None
    assert got.value["n"] == 3
    assert [it.key for it in searched] == ["k5"]  # type: ignore[union-attr]
    store.delete((owner, "docs"), "k0")
    assert store.get((owner, "docs"), "k0") is None


async def acheck_store(store: AsyncPostgresStore, owner: str) -> None:
    await store.abatch(_put_ops(owner))
    results = await store.abatch([GetOp((owner, "docs"), f"k{i}") for i in range(ITEMS)])
    assert [r.value["n"] for r in results] == list(range(ITEMS))  # type: ignore[union-attr]
    assert {r.value["owner"] for r in results} == {owner}  # type: ignore[union-attr]
    odds = await store.asearch((owner,), filter={"even": False, "n": {"$lt": 5}}, limit=100)
    assert sorted(it.value["n"] for it in odds) == [1, 3]
    assert await store.alist_namespaces(prefix=(owner,)) == [(owner, "docs")]


def test_sync_store_with_threads(pooled_dsn: str) -> None:
    with ConnectionPool(
        pooled_dsn, kwargs=POOLED, min_size=CLIENTS, max_size=CLIENTS, open=True
    ) as pool:
        store = PostgresStore(pool)
        store.setup()
        in_threads(CLIENTS * 2, lambda i: check_store(store, f"user{i}"))


def test_sync_store_from_conn_string(pooled_dsn: str) -> None:
    with PostgresStore.from_conn_string(
        pooled_dsn, pooler=True, pool_config={"max_size": CLIENTS}
    ) as store:
        store.setup()
        in_threads(CLIENTS, lambda i: check_store(store, f"fcs{i}"))


async def test_async_store_with_tasks(pooled_dsn: str) -> None:
    async with AsyncConnectionPool(
        pooled_dsn, kwargs=POOLED, min_size=CLIENTS, max_size=CLIENTS, open=False
    ) as pool:
        store = AsyncPostgresStore(pool)
        await store.setup()
        await asyncio.gather(*(acheck_store(store, f"auser{i}") for i in range(CLIENTS * 2)))


async def test_async_store_from_conn_string(pooled_dsn: str) -> None:
    async with AsyncPostgresStore.from_conn_string(
        pooled_dsn, pooler=True, pool_config={"max_size": CLIENTS}
    ) as store:
        await store.setup()
        await asyncio.gather(*(acheck_store(store, f"afcs{i}") for i in range(CLIENTS)))


def _embed(texts: list[str]) -> list[list[float]]:
    """A deterministic 4-dimensional embedding: a text's length and three character counts."""
    return [[float(len(t)), float(t.count("a")), float(t.count("e")), 1.0] for t in texts]


@pytest.mark.pgvector
async def test_async_vector_search_with_tasks(pooled_dsn: str) -> None:
    index = {"dims": 4, "embed": _embed, "fields": ["text"]}
    async with AsyncConnectionPool(
        pooled_dsn, kwargs=POOLED, min_size=CLIENTS, max_size=CLIENTS, open=False
    ) as pool:
        store = AsyncPostgresStore(pool, index=index)  # type: ignore[arg-type]
        await store.setup()

        async def client(owner: str) -> None:
            texts = ["banana", "apple tree", "eel"]
            await store.abatch([PutOp((owner,), t, {"text": t, "owner": owner}) for t in texts])
            hits = await store.asearch((owner,), query="bananas", limit=3)
            assert {h.value["owner"] for h in hits} == {owner}
            assert hits[0].key == "banana"
            assert all(h.score is not None for h in hits)

        await asyncio.gather(*(client(f"vec{i}") for i in range(CLIENTS * 2)))
