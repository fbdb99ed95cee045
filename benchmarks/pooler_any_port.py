"""Measure: runs that succeed through PgBouncer (transaction mode) on a non-standard port,
every client using the package's defaults (no ``pooler=``, no pooler port).

``CHECKPOINT_PG_TEST_DSN=... python -m benchmarks.pooler_any_port`` prints, for the sync and
async savers, the store and app_data, how many of 8 clients x 5 runs succeeded. The numbers are
in RESULTS.md, "Transaction poolers on any port".
"""

from __future__ import annotations

import asyncio
import logging
import operator
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import GetOp, PutOp

from tests.harness import DatabaseFactory, provision_server, start_pgbouncer

CLIENTS, RUNS = 8, int(os.environ.get("MEASURE_RUNS", "5"))


class State(TypedDict):
    owner: str
    trail: Annotated[list[str], operator.add]


def build(checkpointer: Any) -> Any:
    graph = StateGraph(State)
    for name in ("plan", "act", "check"):
        graph.add_node(name, lambda s, n=name: {"trail": [f"{s['owner']}:{n}"]})
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "act")
    graph.add_edge("act", "check")
    graph.add_edge("check", END)
    return graph.compile(checkpointer=checkpointer)


def threads(fn: Any) -> tuple[int, Counter[str]]:
    ok, errors, lock = 0, Counter[str](), threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        nonlocal ok
        barrier.wait(10)
        for _run, result in enumerate(fn(i)):
            with lock:
                if isinstance(result, BaseException):
                    errors[type(result).__name__] += 1
                else:
                    ok += 1

    with ThreadPoolExecutor(CLIENTS) as ex:
        for f in [ex.submit(client, i) for i in range(CLIENTS)]:
            f.result()
    return ok, errors


def sync_saver(dsn: str) -> tuple[int, Counter[str]]:
    from checkpoint_pg import PostgresSaver

    def client(i: int) -> Any:
        with PostgresSaver.from_conn_string(dsn) as saver:
            graph = build(saver)
            for run in range(RUNS):
                owner = f"s{i}-{run}"
                try:
                    out = graph.invoke({"owner": owner, "trail": []}, _cfg(owner))
                    assert out["trail"] == [f"{owner}:{n}" for n in ("plan", "act", "check")]
                    yield True
                except Exception as exc:
                    yield exc

    return threads(lambda i: list(client(i)))


def async_saver(dsn: str) -> tuple[int, Counter[str]]:
    from checkpoint_pg import AsyncPostgresSaver

    async def client(i: int) -> list[Any]:
        results: list[Any] = []
        async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
            graph = build(saver)
            for run in range(RUNS):
                owner = f"a{i}-{run}"
                try:
                    out = await graph.ainvoke({"owner": owner, "trail": []}, _cfg(owner))
                    assert out["trail"] == [f"{owner}:{n}" for n in ("plan", "act", "check")]
                    results.append(True)
                except Exception as exc:
                    results.append(exc)
        return results

    async def main() -> list[list[Any]]:
        return await asyncio.gather(*(client(i) for i in range(CLIENTS)))

    return _count(asyncio.run(main()))


def store(dsn: str) -> tuple[int, Counter[str]]:
    from store import PostgresStore

    def client(i: int) -> Any:
        with PostgresStore.from_conn_string(dsn) as st:
            for run in range(RUNS):
                ns = (f"c{i}", f"r{run}")
                try:
                    st.batch([PutOp(ns, f"k{k}", {"n": k}) for k in range(3)])
                    got = st.batch([GetOp(ns, f"k{k}") for k in range(3)])
                    assert [g.value["n"] for g in got] == [0, 1, 2]  # type: ignore[union-attr]
                    yield True
                except Exception as exc:
                    yield exc

    return threads(lambda i: list(client(i)))


def app_data(dsn: str) -> tuple[int, Counter[str]]:
    from app_data import AppDataService, Database, ProjectType
    from checkpoint_pg.retry import RetryPolicy

    async def client(service: AppDataService, i: int) -> list[Any]:
        results: list[Any] = []
        user = await service.create_user(f"0xmeasure{i}")
        project = await service.create_project(user.id, f"p{i}", ProjectType.FULLSTACK)
        for run in range(RUNS):
            try:
                await service.save_file(project.id, f"f{run}.md", f"{i}:{run}")
                got = await service.get_file(project.id, f"f{run}.md")
                assert got is not None
                assert got.content == f"{i}:{run}"
                results.append(True)
            except Exception as exc:
                results.append(exc)
        return results

    async def main() -> list[list[Any]]:
        async with Database(dsn, retry=RetryPolicy(base_delay=0.01)) as db:
            service = AppDataService(db)
            return await asyncio.gather(*(client(service, i) for i in range(CLIENTS)))

    return _count(asyncio.run(main()))


def _cfg(owner: str) -> Any:
    return {"configurable": {"thread_id": owner}}


def _count(per_client: list[list[Any]]) -> tuple[int, Counter[str]]:
    flat = [r for rs in per_client for r in rs]
    errors = Counter(type(r).__name__ for r in flat if isinstance(r, BaseException))
    return sum(1 for r in flat if r is True), errors


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    server = provision_server()
    factory = DatabaseFactory(server, prefix="measure")
    bouncer = start_pgbouncer(server, pool_size=3)
    try:
        direct = factory.create()
        _setup(direct)
        pooled = bouncer.dsn(direct)
        for name, fn in (
            ("sync saver", sync_saver),
            ("async saver", async_saver),
            ("store", store),
            ("app_data", app_data),
        ):
            ok, errors = fn(pooled)
            print(f"{name}: {ok}/{CLIENTS * RUNS} {dict(errors)}", flush=True)
    finally:
        bouncer.stop()
        factory.close()
        server.close()


def _setup(dsn: str) -> None:
    from app_data import Database, migrations
    from checkpoint_pg import PostgresSaver
    from store import PostgresStore

    with PostgresSaver.from_conn_string(dsn) as saver:
        saver.setup()
    with PostgresStore.from_conn_string(dsn) as st:
        st.setup()

    async def upgrade() -> None:
        async with Database(dsn) as db:
            await migrations.upgrade(db)

    asyncio.run(upgrade())


if __name__ == "__main__":
    main()
