"""The checkpoint savers through PgBouncer in transaction mode, with 8+ concurrent clients.

Every client writes and reads its own thread and must get back exactly its own data: a
prepared statement or any other session state that leaked from one transaction to the next
would surface here as an error or as another client's rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime.aio import arun
from checkpoint_pg._runtime.dsn import POOLED_PORTS_ENV_VAR
from checkpoint_pg._runtime.protocol import Operation, Query, one
from checkpoint_pg._runtime.sync import run
from tests.checkpoint.helpers import checkpoint, config, versions_of
from tests.harness import PgBouncer, TestServer, start_pgbouncer
from tests.support.pooler import CLIENTS, POOL_SIZE, POOLED, in_threads, require_pgbouncer

STEPS = 8


def dbname(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


def assert_shared(bouncer: PgBouncer, dsn: str, clients: int) -> None:
    """PgBouncer served `clients` client connections with at most POOL_SIZE server ones."""
    name = dbname(dsn)
    with psycopg.connect(bouncer.admin_dsn, autocommit=True) as admin:
        client_rows = admin.execute("SHOW CLIENTS").fetchall()
        server_rows = admin.execute("SHOW SERVERS").fetchall()
    # Column 3 of SHOW CLIENTS / SHOW SERVERS is the database name.
    assert sum(1 for r in client_rows if r[2] == name) >= clients
    assert sum(1 for r in server_rows if r[2] == name) <= POOL_SIZE


def stepped(values: dict[str, Any], step: int) -> Any:
    """A checkpoint whose channels all have version step + 1 (new blobs every step)."""
    return checkpoint(values, **dict.fromkeys(values, str(step + 1)))


def write_and_check(saver: PostgresSaver, owner: str) -> None:
    """Write STEPS checkpoints (with writes) on thread `owner` and read each one back."""
    cfg = config(owner)
    for step in range(STEPS):
        cp = stepped({"owner": owner, "step": step, "log": [owner] * (step + 1)}, step)
        cfg = saver.put(cfg, cp, {"source": "loop", "step": step, "owner": owner}, versions_of(cp))
        saver.put_writes(cfg, [("inbox", f"{owner}:{step}")], task_id=f"task-{owner}")
        got = saver.get_tuple(cfg)
        assert got is not None
        assert got.checkpoint["channel_values"]["owner"] == owner
        assert got.checkpoint["channel_values"]["step"] == step
        assert got.checkpoint["channel_values"]["log"] == [owner] * (step + 1)
        assert got.metadata["owner"] == owner
        assert [w[2] for w in got.pending_writes or []] == [f"{owner}:{step}"]
    history = list(saver.list(config(owner)))
    assert [t.metadata["step"] for t in history] == list(reversed(range(STEPS)))
    assert {t.metadata["owner"] for t in history} == {owner}
    found = list(saver.list(None, filter={"owner": owner}))
    assert len(found) == STEPS


async def awrite_and_check(saver: AsyncPostgresSaver, owner: str) -> None:
    cfg = config(owner)
    for step in range(STEPS):
        cp = stepped({"owner": owner, "step": step}, step)
        cfg = await saver.aput(cfg, cp, {"step": step, "owner": owner}, versions_of(cp))
        await saver.aput_writes(cfg, [("inbox", f"{owner}:{step}")], task_id=f"task-{owner}")
        got = await saver.aget_tuple(cfg)
        assert got is not None
        assert got.checkpoint["channel_values"] == {"owner": owner, "step": step}
        assert [w[2] for w in got.pending_writes or []] == [f"{owner}:{step}"]
    history = [t async for t in saver.alist(config(owner))]
    assert [t.metadata["step"] for t in history] == list(reversed(range(STEPS)))
    assert {t.metadata["owner"] for t in history} == {owner}


def test_sync_saver_on_a_user_pool_with_threads(pooled_dsn: str, pgbouncer: PgBouncer) -> None:
    with ConnectionPool(
        pooled_dsn, kwargs=POOLED, min_size=CLIENTS, max_size=CLIENTS, open=True
    ) as pool:
        saver = PostgresSaver(pool)
        saver.setup()
        in_threads(CLIENTS * 2, lambda i: write_and_check(saver, f"sync-{i}"))
        assert_shared(pgbouncer, pooled_dsn, CLIENTS)


def test_from_conn_string_with_pooler_true(pooled_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pooled_dsn, pooler=True, pool_size=CLIENTS) as saver:
        saver.setup()
        in_threads(CLIENTS, lambda i: write_and_check(saver, f"fcs-{i}"))


def test_pooler_port_is_detected(
    pooled_dsn: str, pgbouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(POOLED_PORTS_ENV_VAR, str(pgbouncer.port))
    with PostgresSaver.from_conn_string(pooled_dsn, pool_size=CLIENTS) as saver:
        pool = saver.conn
        assert isinstance(pool, ConnectionPool)
        with pool.connection() as conn:
            assert conn.prepare_threshold is None
        saver.setup()
        in_threads(CLIENTS, lambda i: write_and_check(saver, f"auto-{i}"))


async def test_async_saver_on_a_user_pool_with_tasks(pooled_dsn: str, pgbouncer: PgBouncer) -> None:
    async with AsyncConnectionPool(
        pooled_dsn, kwargs=POOLED, min_size=CLIENTS, max_size=CLIENTS, open=False
    ) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        await asyncio.gather(*(awrite_and_check(saver, f"async-{i}") for i in range(CLIENTS * 2)))
        assert_shared(pgbouncer, pooled_dsn, CLIENTS)


async def test_async_from_conn_string_with_pooler_true(pooled_dsn: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(
        pooled_dsn, pooler=True, pool_size=CLIENTS
    ) as saver:
        await saver.setup()
        await asyncio.gather(*(awrite_and_check(saver, f"afcs-{i}") for i in range(CLIENTS)))


def test_setup_from_many_clients_at_once(pooled_dsn: str) -> None:
    """setup()'s advisory lock is transaction-scoped: nothing is left held on a shared server
    connection, and concurrent callers serialise instead of failing."""

    def setup(_: int) -> None:
        with psycopg.connect(pooled_dsn, **POOLED) as conn:  # type: ignore[arg-type]
            PostgresSaver(conn).setup()

    in_threads(CLIENTS, setup)
    with psycopg.connect(pooled_dsn, **POOLED) as conn:  # type: ignore[arg-type]
        held = conn.execute(  # in this test's database (other suites share the server)
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert held.fetchone() == (0,)


def test_non_autocommit_connections_and_user_transactions(pooled_dsn: str) -> None:
    """A user's connection outside autocommit, and the saver inside the user's transaction
    (a savepoint): each operation stays inside one transaction, so one server connection."""

    def client(i: int) -> None:
        with psycopg.connect(pooled_dsn, prepare_threshold=None) as conn:
            saver = PostgresSaver(conn)
            write_and_check(saver, f"tx-{i}")
            with conn.transaction():
                cp = checkpoint({"owner": f"tx-{i}", "step": 99})
                cfg = saver.put(config(f"tx-{i}"), cp, {"step": 99}, versions_of(cp))
                got = saver.get_tuple(cfg)
                assert got is not None
                assert got.checkpoint["channel_values"]["step"] == 99

    with psycopg.connect(pooled_dsn, **POOLED) as conn:  # type: ignore[arg-type]
        PostgresSaver(conn).setup()
    in_threads(CLIENTS, client)


def test_pipelined_connections(pooled_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pooled_dsn, pooler=True, pipeline=True) as saver:
        saver.setup()

    def client(i: int) -> None:
        with PostgresSaver.from_conn_string(pooled_dsn, pooler=True, pipeline=True) as saver:
            write_and_check(saver, f"pipe-{i}")

    in_threads(CLIENTS, client)


@pytest.fixture
def single_server_bouncer(pg_server: TestServer) -> Iterator[PgBouncer]:
    """A PgBouncer with ONE server connection per database: every client's transactions run
    on the same server session, one after another."""
    require_pgbouncer()
    bouncer = start_pgbouncer(pg_server, pool_size=1)
    try:
        yield bouncer
    finally:
        bouncer.stop()


def _explicitly_prepared() -> Operation[Any]:
    query = Query("SELECT %s::int + 1", (1,), fetch=True, prepare=True)
    return Operation(one(query, lambda rows: rows[0][0]))


def test_explicit_prepare_is_ignored_without_prepare_threshold(
    single_server_bouncer: PgBouncer, database_dsn: str
) -> None:
    """Two clients on one server session, each running a query that asks to be prepared:
    with prepare_threshold=None nothing is prepared, so nothing collides."""
    dsn = single_server_bouncer.dsn(database_dsn)
    with (
        psycopg.connect(dsn, **POOLED) as first,  # type: ignore[arg-type]
        psycopg.connect(dsn, **POOLED) as second,  # type: ignore[arg-type]
    ):
        for conn in (first, second, first, second):
            assert run(conn, _explicitly_prepared()) == 2
        assert first.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


async def test_explicit_prepare_is_ignored_async(
    single_server_bouncer: PgBouncer, database_dsn: str
) -> None:
    dsn = single_server_bouncer.dsn(database_dsn)
    async with (
        await psycopg.AsyncConnection.connect(dsn, **POOLED) as first,  # type: ignore[arg-type]
        await psycopg.AsyncConnection.connect(dsn, **POOLED) as second,  # type: ignore[arg-type]
    ):
        for conn in (first, second, first, second):
            assert await arun(conn, _explicitly_prepared()) == 2
