"""The single connection `from_conn_string` opens, when it is lost.

The official saver fails on its dead connection for good. Ours opened that connection itself,
so it opens another before its next statement and (as the retry policy allows) runs the
operation again, whoever was using it: retries off, the failing call raises and the next one
succeeds. It never replaces the connection under the caller's own transaction or pipeline,
which went with it. A replacement that cannot connect is a transient fault, without secrets.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import psycopg.sql
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime import sync as sync_runtime
from checkpoint_pg._runtime.retry import RetryPolicy, classify
from checkpoint_pg._runtime.shell import mark_pooler
from checkpoint_pg.errors import ConnectionLostError
from store import PostgresStore
from tests.support.faults import (
    FAST,
    Admin,
    checkpoint,
    named,
    new_app,
    thread_config,
)


def _put(saver: PostgresSaver, value: str) -> dict:  # type: ignore[type-arg]
    cp, versions = checkpoint(saver, value)
    return saver.put(thread_config(), cp, {}, versions)  # type: ignore[return-value]


def _put_in_killed_block(
    saver: PostgresSaver, admin: Admin, app: str, *, pipeline: bool
) -> list[Exception]:
    """What a put raised inside the caller's transaction (or pipeline, as ``saver.pipe``)
    after the connection was killed; leaving the block then fails too, as it must."""
    failures: list[Exception] = []
    try:
        with saver.conn.pipeline() if pipeline else saver.conn.transaction() as block:
            if pipeline:
                saver.pipe = block
            admin.terminate(app)
            try:
                _put(saver, "v")
            except Exception as exc:
                failures.append(exc)
                raise
    except psycopg.OperationalError:
        pass
    finally:
        saver.pipe = None
    return failures


def test_official_saver_stays_failed_after_its_connection_is_killed(dsn: str, admin: Admin) -> None:
    """The behaviour ours improves on: every later call fails too."""
    app = new_app()
    with OfficialSaver.from_conn_string(named(dsn, app)) as saver:
        saver.setup()
        admin.terminate(app)
        for _ in range(2):
            with pytest.raises(psycopg.OperationalError):
                saver.get_tuple(thread_config())


def test_killed_connection_is_replaced_by_the_next_call(dsn: str, admin: Admin) -> None:
    app = new_app()
    with PostgresSaver.from_conn_string(named(dsn, app), retry=RetryPolicy.never()) as saver:
        saver.setup()
        stored = _put(saver, "kept")
        lost, lost_pid = saver.conn, saver.conn.info.backend_pid
        admin.terminate(app)
        with pytest.raises(psycopg.OperationalError) as info:
            saver.get_tuple(stored)
        assert classify(info.value) == "lost"
        got = saver.get_tuple(stored)
        assert got is not None
        assert got.checkpoint["channel_values"] == {"x": "kept"}
        assert saver.conn is not lost
        assert lost.closed
        assert saver.conn.info.backend_pid != lost_pid
    assert saver.conn.closed  # the replacement is closed on exit too


async def test_async_killed_connection_is_replaced_by_the_next_call(dsn: str, admin: Admin) -> None:
    app = new_app()
    async with AsyncPostgresSaver.from_conn_string(
        named(dsn, app), retry=RetryPolicy.never()
    ) as saver:
        await saver.setup()
        lost = saver.conn
        admin.terminate(app)
        with pytest.raises(psycopg.OperationalError):
            await saver.aget_tuple(thread_config())
        assert await saver.aget_tuple(thread_config()) is None
        assert saver.conn is not lost
    assert saver.conn.closed


def test_killed_connection_is_replaced_within_the_same_call_by_default(
    dsn: str, admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "checkpoint_pg.retry")
    app = new_app()
    with PostgresStore.from_conn_string(named(dsn, app), retry=RetryPolicy(**FAST)) as store:
        store.setup()
        admin.terminate(app)
        store.put(("ns",), "k", {"v": 1})
        item = store.get(("ns",), "k")
        assert item is not None
    retries = [r.getMessage() for r in caplog.records if r.name == "checkpoint_pg.retry"]
    assert len(retries) == 1, retries
    assert "AdminShutdown" in retries[0]


def test_connection_killed_while_idle_is_checked_before_use(
    dsn: str, admin: Admin, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a pool checks a connection idle for longer than IDLE_CHECK_AFTER: no failed attempt."""
    monkeypatch.setattr(sync_runtime, "IDLE_CHECK_AFTER", 0.2)
    caplog.set_level(logging.WARNING, "checkpoint_pg.retry")
    app = new_app()
    with PostgresSaver.from_conn_string(named(dsn, app), retry=RetryPolicy.never()) as saver:
        saver.setup()
        admin.terminate(app)
        time.sleep(0.3)
        assert saver.get_tuple(thread_config()) is None
    assert not [r for r in caplog.records if r.name == "checkpoint_pg.retry"]


@pytest.mark.timeout(60)
def test_threads_sharing_the_connection_all_carry_on_after_its_loss(dsn: str, admin: Admin) -> None:
    app = new_app()
    stop = threading.Event()
    with PostgresSaver.from_conn_string(named(dsn, app), retry=RetryPolicy(**FAST)) as saver:
        saver.setup()

        def loop(_: int) -> int:
            done = 0
            while not stop.is_set() or done < 3:
                stored = _put(saver, "v")
                assert saver.get_tuple(stored) is not None
                done += 1
            return done

        with ThreadPoolExecutor(8) as ex:
            futures = [ex.submit(loop, i) for i in range(8)]
            for _ in range(3):
                time.sleep(0.2)
                admin.terminate(app)
            stop.set()
            assert all(f.result(timeout=30) >= 3 for f in futures)


def test_loss_inside_the_callers_transaction_is_not_run_again_alone(dsn: str, admin: Admin) -> None:
    app = new_app()
    with PostgresSaver.from_conn_string(named(dsn, app), retry=RetryPolicy(**FAST)) as saver:
        saver.setup()
        failures = _put_in_killed_block(saver, admin, app, pipeline=False)
        assert len(failures) == 1
        assert isinstance(failures[0], ConnectionLostError)
        assert "inside the caller's transaction" in str(failures[0])
        # The next call, outside any transaction, gets a new connection.
        assert saver.get_tuple(thread_config()) is None


def test_loss_inside_the_callers_pipeline_is_not_replaced(dsn: str, admin: Admin) -> None:
    app = new_app()
    with PostgresSaver.from_conn_string(named(dsn, app), retry=RetryPolicy(**FAST)) as saver:
        saver.setup()
        failures = _put_in_killed_block(saver, admin, app, pipeline=True)
        assert len(failures) == 1
        assert isinstance(failures[0], ConnectionLostError)
        assert "inside the caller's pipeline" in str(failures[0])
        assert saver.get_tuple(thread_config()) is None


def test_replacement_keeps_the_transaction_pooler_switch(dsn: str, admin: Admin) -> None:
    """A connection switched to unprepared statements (a pooler showed itself) is replaced by
    one that prepares nothing either."""
    app = new_app()
    with PostgresSaver.from_conn_string(named(dsn, app), retry=RetryPolicy(**FAST)) as saver:
        saver.setup()
        mark_pooler(saver.conn, True)
        saver.conn.prepare_threshold = None
        admin.terminate(app)
        assert saver.get_tuple(thread_config()) is None
        assert saver.conn.prepare_threshold is None


def test_replacement_that_cannot_connect_is_transient_and_secret_free(
    database_dsn: str, admin: Admin
) -> None:
    app, secret = new_app(), "hunter2-not-shown"
    dbname = psycopg.conninfo.conninfo_to_dict(database_dsn)["dbname"]
    refuse = psycopg.sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}")
    with PostgresSaver.from_conn_string(
        named(psycopg.conninfo.make_conninfo(database_dsn, password=secret), app),
        retry=RetryPolicy.never(),
    ) as saver:
        saver.setup()
        admin.conn.execute(refuse.format(psycopg.sql.Identifier(dbname), psycopg.sql.SQL("false")))
        try:
            admin.terminate(app)
            failures = []
            for _ in range(2):  # the lost connection, then a replacement that cannot connect
                with pytest.raises(psycopg.OperationalError) as info:
                    saver.get_tuple(thread_config())
                failures.append(info.value)
        finally:
            admin.conn.execute(
                refuse.format(psycopg.sql.Identifier(dbname), psycopg.sql.SQL("true"))
            )
        assert [classify(exc) for exc in failures] == ["lost", "lost"]
        assert "cannot reconnect to" in str(failures[1])
        assert "not currently accepting connections" in str(failures[1])
        assert all(secret not in str(exc) for exc in failures)
        assert saver.get_tuple(thread_config()) is None  # the server takes connections again
