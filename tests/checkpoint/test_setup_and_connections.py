"""setup() under concurrency and in transactions, schemas, and any connection users hand over."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from langgraph.checkpoint.postgres.base import MIGRATIONS as OFFICIAL_MIGRATIONS
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from checkpoint_pg import (
    AsyncPostgresSaver,
    ConnectionUnusableError,
    PostgresSaver,
    SchemaNotReadyError,
)
from checkpoint_pg._runtime.dsn import is_pooled
from checkpoint_pg._sql import OWN_MIGRATIONS
from tests.checkpoint.helpers import checkpoint, config, count_rows


def _migrations(dsn: str, table: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT v FROM {table} ORDER BY v").fetchall()
    return [r[0] for r in rows]


def _put_one(saver: PostgresSaver, thread_id: str) -> dict:  # type: ignore[type-arg]
    cp = checkpoint({"doc": {"a": 1}})
    return saver.put(config(thread_id), cp, {}, cp["channel_versions"])  # type: ignore[return-value]


@pytest.mark.timeout(60)
def test_six_concurrent_setups_on_an_empty_database_all_succeed(dsn: str) -> None:
    barrier = threading.Barrier(6)

    def setup_once(_: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            barrier.wait()
            PostgresSaver(conn).setup()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(setup_once, range(6)))
    assert _migrations(dsn, "checkpoint_migrations") == list(range(len(OFFICIAL_MIGRATIONS)))
    assert _migrations(dsn, "checkpoint_pg_migrations") == list(range(len(OWN_MIGRATIONS)))


def test_setup_again_changes_nothing(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        _put_one(saver, "t")
        saver.setup()
    assert count_rows(dsn, "checkpoints") == 1
    assert _migrations(dsn, "checkpoint_migrations") == list(range(len(OFFICIAL_MIGRATIONS)))


@pytest.mark.unpartitioned(reason="needs the tables absent")
def test_setup_inside_a_user_transaction_is_undone_by_its_rollback(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1")  # the user's transaction is open
        PostgresSaver(conn).setup()
        conn.rollback()
        row = conn.execute("SELECT to_regclass('checkpoints')").fetchone()
    assert row == (None,)


def test_setup_inside_a_user_transaction_commits_with_it(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1")
        PostgresSaver(conn).setup()
        conn.commit()
    assert _migrations(dsn, "checkpoint_migrations")[-1] == len(OFFICIAL_MIGRATIONS) - 1


def test_schema_option_puts_every_table_in_that_schema(database_dsn: str) -> None:
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, schema="agent memory")
        saver.setup()
        stored = _put_one(saver, "t")
        assert saver.get_tuple(stored) is not None
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_name LIKE 'checkpoint%%' ORDER BY 2"
        ).fetchall()
    assert {schema for schema, _ in tables} == {"agent memory"}
    assert [name for _, name in tables] == [
        "checkpoint_blobs",
        "checkpoint_migrations",
        "checkpoint_pg_migrations",
        "checkpoint_writes",
        "checkpoints",
    ]


def test_a_dict_row_connection_works(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        assert saver.get_tuple(_put_one(saver, "t")) is not None


def test_a_non_autocommit_connection_commits_each_operation(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        _put_one(saver, "t")
        # seen from another connection: committed, not left in an open transaction
        assert count_rows(dsn, "checkpoints", "t") == 1
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_operations_inside_a_user_transaction_follow_its_rollback(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        with conn.transaction(force_rollback=True):
            _put_one(saver, "t")
            assert saver.get_tuple(config("t")) is not None
    assert count_rows(dsn, "checkpoints", "t") == 0


def test_a_closed_connection_is_refused_clearly(dsn: str) -> None:
    conn = psycopg.connect(dsn, autocommit=True)
    saver = PostgresSaver(conn)
    conn.close()
    with pytest.raises(ConnectionUnusableError, match="closed"):
        saver.get_tuple(config("t"))


def test_a_connection_in_a_failed_transaction_is_refused_clearly(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        saver = PostgresSaver(conn)
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        with pytest.raises(ConnectionUnusableError, match="failed transaction"):
            saver.get_tuple(config("t"))


@pytest.mark.unpartitioned(reason="needs the tables absent")
def test_using_the_saver_before_setup_says_to_call_setup(dsn: str) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        pytest.raises(SchemaNotReadyError, match="call setup"),
    ):
        PostgresSaver(conn).get_tuple(config("t"))


def test_the_constructor_refuses_what_is_not_a_psycopg_connection() -> None:
    with pytest.raises(TypeError, match="Connection or ConnectionPool"):
        PostgresSaver("postgresql://localhost/db")  # type: ignore[arg-type]


def test_a_pool_does_not_serialise_operations(dsn: str) -> None:
    """A put stuck behind a row lock must not block another thread's read."""
    with ConnectionPool(
        dsn, min_size=2, max_size=4, open=False, kwargs={"autocommit": True}
    ) as pool:
        saver = PostgresSaver(pool)
        saver.setup()
        stuck_cfg = _put_one(saver, "stuck")
        _put_one(saver, "free")
        with psycopg.connect(dsn) as blocker:
            blocker.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = 'stuck' FOR UPDATE"
            ).fetchall()
            cp = checkpoint({"doc": {"a": 2}})
            cp["id"] = stuck_cfg["configurable"]["checkpoint_id"]
            with ThreadPoolExecutor(1) as ex:
                pending = ex.submit(saver.put, config("stuck"), cp, {}, cp["channel_versions"])
                assert saver.get_tuple(config("free")) is not None  # not blocked
                assert not pending.done()
                blocker.rollback()
                pending.result(timeout=10)


# Fails only by deadlocking: SIGALRM interrupts the lock wait in this (main) thread.
@pytest.mark.timeout(30, method="signal")
def test_iterating_list_holds_no_lock(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        _put_one(saver, "t")
        for _ in saver.list(config("t")):
            _put_one(saver, "other")  # would deadlock if list() kept the connection lock


def test_pooler_ports_are_detected_from_the_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_pooled("postgresql://app@db:6432/x")
    assert not is_pooled("postgresql://app@db:5432/x")
    monkeypatch.setenv("CHECKPOINT_PG_POOLED_PORTS", "7000")
    assert is_pooled("host=db port=7000")


@pytest.mark.timeout(30)
async def test_async_saver_blocking_methods_work_from_another_thread(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        saver = AsyncPostgresSaver(conn)
        await saver.setup()
        cp = checkpoint({"doc": [1]})
        stored = await asyncio.to_thread(saver.put, config("t"), cp, {}, cp["channel_versions"])
        got = await asyncio.to_thread(saver.get_tuple, stored)
        assert got is not None
        assert got.checkpoint["channel_values"] == {"doc": [1]}


async def test_async_saver_blocking_methods_refuse_the_event_loop_thread(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        saver = AsyncPostgresSaver(conn)
        with pytest.raises(asyncio.InvalidStateError, match="different thread"):
            saver.get_tuple(config("t"))


def test_puts_inside_the_callers_own_pipeline_on_saver_conn_are_all_stored(dsn: str) -> None:
    # The caller opened the pipeline without handing it over (`saver.pipe` stays None).
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        parent = None
        with conn.pipeline():
            for step in range(3):
                cp = checkpoint({"doc": {"step": step}}, doc=str(step + 1))
                cfg = config("piped") if parent is None else parent
                parent = saver.put(cfg, cp, {"step": step}, cp["channel_versions"])
            latest = saver.get_tuple(config("piped"))  # read back within the pipeline
        stored = list(saver.list(config("piped")))
    assert latest is not None
    assert latest.metadata["step"] == 2
    assert [t.metadata["step"] for t in stored] == [2, 1, 0]
    assert stored[0].checkpoint["channel_values"] == {"doc": {"step": 2}}
