"""The retry policy itself, on real errors: what is transient, what is retried where, what
surfaces, the pool's idle check and an exhausted pool."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime import sync as sync_runtime
from checkpoint_pg._runtime.retry import RetryPolicy, classify
from checkpoint_pg.errors import (
    OperationInterruptedError,
    PoolExhaustedError,
    RetriesExhaustedError,
)
from tests.support.faults import (
    FAST,
    Admin,
    TableLock,
    checkpoint,
    in_thread,
    named,
    new_app,
    thread_config,
)

# -- classification of real errors -------------------------------------------------------------


def _error(conn: psycopg.Connection, sql: str) -> BaseException:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    return info.value


def test_programming_and_data_errors_are_not_transient(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (k int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        for sql in (
            "SELEC 1",  # syntax
            "SELECT 1/0",  # data
            "INSERT INTO t VALUES (1)",  # integrity
            "SELECT * FROM missing_table",  # undefined
            "SET statement_timeout = 1; SELECT pg_sleep(1)",  # cancelled: not ours to repeat
        ):
            exc = _error(conn, sql)
            assert classify(exc) is None, (sql, type(exc))
            conn.execute("RESET statement_timeout")
    assert classify(PoolTimeout("x")) is None
    assert classify(PoolExhaustedError("x")) is None
    assert classify(RetriesExhaustedError("x")) is None
    assert classify(ValueError("x")) is None


def test_terminated_backend_and_refused_connection_are_lost(dsn: str, admin: Admin) -> None:
    app = new_app()
    with psycopg.connect(named(dsn, app), autocommit=True) as conn:
        admin.terminate(app)
        exc = _error(conn, "SELECT 1")
    assert classify(exc) == "lost"
    with socket_closed_port() as port, pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(host="127.0.0.1", port=port, connect_timeout=2)
    assert classify(info.value) == "lost"


class socket_closed_port:
    """A TCP port on which nothing listens (bound, never listening: connect is refused)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *_: object) -> None:
        self.sock.close()


def test_deadlock_and_serialization_failure_are_rolled_back(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE t (k int PRIMARY KEY, v int)")
        setup.execute("INSERT INTO t VALUES (1, 0), (2, 0)")
    # Deadlock: each transaction holds one row and wants the other's.
    one, two = psycopg.connect(dsn), psycopg.connect(dsn)
    try:
        one.execute("UPDATE t SET v = 1 WHERE k = 1")
        two.execute("UPDATE t SET v = 2 WHERE k = 2")
        join = in_thread(lambda: one.execute("UPDATE t SET v = 1 WHERE k = 2"))
        time.sleep(0.2)
        errors: list[BaseException] = []
        try:
            two.execute("UPDATE t SET v = 2 WHERE k = 1")
        except psycopg.Error as exc:
            errors.append(exc)
            two.rollback()
        try:
            join(10)
        except psycopg.Error as exc:
            errors.append(exc)
        assert len(errors) == 1
        assert isinstance(errors[0], pg_errors.DeadlockDetected)
        assert classify(errors[0]) == "rolled_back"
    finally:
        one.close()
        two.close()
    # Serialization failure: a repeatable-read update of a row another transaction changed.
    with psycopg.connect(dsn) as rr, psycopg.connect(dsn, autocommit=True) as other:
        rr.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rr.execute("SELECT * FROM t")
        other.execute("UPDATE t SET v = 9 WHERE k = 1")
        exc = _error(rr, "UPDATE t SET v = 10 WHERE k = 1")
    assert isinstance(exc, pg_errors.SerializationFailure)
    assert classify(exc) == "rolled_back"


# -- the policy --------------------------------------------------------------------------------


def test_policy_backoff_is_capped_jittered_and_budgeted() -> None:
    p = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=1.0, jitter=0.5, total_budget=3)
    for retry in range(1, 10):
        full = min(1.0, 0.1 * 2 ** (retry - 1))
        for _ in range(50):
            assert full * 0.5 <= p.delay(retry) <= full
    assert p.next_delay(1, 0.0) is not None
    assert p.next_delay(10, 0.0) is None  # attempts used up
    assert p.next_delay(2, 2.99) is None  # would end past the budget
    assert RetryPolicy(jitter=0).delay(3) == pytest.approx(0.4)
    assert not RetryPolicy.never().enabled
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
    with pytest.raises(TypeError, match="RetryPolicy"):
        PostgresSaver(psycopg.Connection.__new__(psycopg.Connection), retry=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("budget", [1.0, 5.0, 20.0, 60.0])
def test_by_default_the_budget_not_the_attempts_ends_the_retrying(budget: float) -> None:
    """Even when jitter draws the shortest delay every time, the attempts outlast the budget."""
    policy = RetryPolicy(total_budget=budget)
    shortest = sum(
        min(policy.max_delay, policy.base_delay * 2 ** (n - 1)) * (1 - policy.jitter)
        for n in range(1, policy.attempts)
    )
    assert shortest >= budget
    assert RetryPolicy().attempts == 25  # the README's number
    assert RetryPolicy(max_attempts=3, total_budget=budget).attempts == 3


def test_never_policy_surfaces_the_fault(dsn: str, admin: Admin) -> None:
    app = new_app()
    with PostgresSaver.from_conn_string(
        named(dsn, app), pool_size=2, retry=RetryPolicy.never()
    ) as saver:
        saver.setup()
        _shell_idle_check_off(saver)
        admin.terminate(app)
        with pytest.raises(psycopg.OperationalError) as info:
            saver.get_tuple(thread_config())
        assert classify(info.value) == "lost"


def _shell_idle_check_off(saver: PostgresSaver) -> None:
    """Make the pool hand out the dead connection (as if it was used a moment ago)."""
    assert isinstance(saver.conn, ConnectionPool)
    saver.conn._check = None  # type: ignore[assignment]


def test_retries_exhausted_is_typed_and_secret_free(
    dsn: str, admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    """Every attempt is killed while it waits: after max_attempts, RetriesExhaustedError."""
    app = new_app()
    secret_dsn = psycopg.conninfo.make_conninfo(named(dsn, app), password="hunter2-secret")
    caplog.set_level(logging.DEBUG)
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    with PostgresSaver.from_conn_string(secret_dsn, retry=policy) as saver:
        saver.setup()
        lock = TableLock(dsn, "checkpoints")
        try:
            cp, versions = checkpoint(saver, 1)
            join = in_thread(lambda: saver.put(thread_config(), cp, {}, versions))
            for _ in range(3):
                admin.kill(admin.wait_for_lock_wait(app))
            with pytest.raises(RetriesExhaustedError) as info:
                join(20)
        finally:
            lock.release()
    message = str(info.value)
    assert "3 times" in message
    assert "AdminShutdown (SQLSTATE 57P01)" in message
    assert isinstance(info.value, psycopg.OperationalError)
    retries = [r.getMessage() for r in caplog.records if r.name == "checkpoint_pg.retry"]
    assert len(retries) == 2
    for text in [message, *retries, *(r.getMessage() for r in caplog.records)]:
        assert "hunter2" not in text


def test_serialization_failure_is_retried_on_a_single_autocommit_connection(dsn: str) -> None:
    """A put that loses a repeatable-read race is run again (its own transaction)."""
    rr_dsn = psycopg.conninfo.make_conninfo(
        dsn,
        options=psycopg.conninfo.conninfo_to_dict(dsn).get("options", "")
        + " -c default_transaction_isolation=repeatable\\ read",
    )
    with psycopg.connect(rr_dsn, autocommit=True) as conn, psycopg.connect(dsn) as other:
        saver = PostgresSaver(conn, retry=RetryPolicy(**FAST))
        saver.setup()
        config = thread_config()
        cp, versions = checkpoint(saver, "v")
        stored = saver.put(config, cp, {"step": 1}, versions)
        # Another transaction updates the row and commits while our upsert waits for it.
        other.execute(
            "UPDATE checkpoints SET metadata = metadata || '{\"other\": 1}' "
            "WHERE checkpoint_id = %s",
            (cp["id"],),
        )
        join = in_thread(lambda: saver.put(config, cp, {"step": 1, "again": True}, versions))
        time.sleep(0.3)
        other.commit()
        join(10)
        got = saver.get_tuple(stored)
        assert got is not None
        assert got.metadata.get("again") is True

        # Inside the caller's own transaction the same fault is theirs to handle.
        conn.autocommit = False
        conn.execute("SELECT 1")  # the caller's transaction is open
        other.execute(
            "UPDATE checkpoints SET metadata = metadata WHERE checkpoint_id = %s", (cp["id"],)
        )
        join = in_thread(lambda: saver.put(config, cp, {"step": 1}, versions))
        time.sleep(0.3)
        other.commit()
        with pytest.raises(pg_errors.SerializationFailure):
            join(10)
        conn.rollback()


def test_a_fault_mid_transaction_is_interrupted_and_setup_can_run_again(
    dsn: str, admin: Admin
) -> None:
    app = new_app()
    with PostgresSaver.from_conn_string(named(dsn, app), retry=RetryPolicy(**FAST)) as saver:
        saver.setup()
        lock = psycopg.connect(dsn)
        try:
            lock.execute("LOCK TABLE checkpoint_migrations IN ACCESS EXCLUSIVE MODE")
            join = in_thread(saver.setup)
            admin.kill(admin.wait_for_lock_wait(app))
            with pytest.raises(OperationInterruptedError, match="call it again"):
                join(10)
        finally:
            lock.rollback()
            lock.close()
        saver.setup()


# -- the pool ----------------------------------------------------------------------------------


def test_idle_connections_are_checked_on_checkout(
    dsn: str, admin: Admin, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection killed while idle longer than IDLE_CHECK_AFTER never reaches an operation."""
    monkeypatch.setattr(sync_runtime, "IDLE_CHECK_AFTER", 0.2)
    caplog.set_level(logging.WARNING, "checkpoint_pg.retry")
    app = new_app()
    with PostgresSaver.from_conn_string(
        named(dsn, app), pool_size=2, retry=RetryPolicy(**FAST)
    ) as saver:
        saver.setup()
        admin.terminate(app)
        time.sleep(0.3)
        assert saver.get_tuple(thread_config()) is None
    assert not [r for r in caplog.records if r.name == "checkpoint_pg.retry"]


def test_exhausted_pool_is_a_clear_timeout_not_a_hang(dsn: str) -> None:
    with ConnectionPool(
        dsn, min_size=1, max_size=2, timeout=0.5, kwargs={"autocommit": True}, name="tiny"
    ) as pool:
        saver = PostgresSaver(pool)
        saver.setup()
        held = [pool.getconn(), pool.getconn()]
        try:
            started = time.monotonic()
            with pytest.raises(PoolExhaustedError) as info:
                saver.get_tuple(thread_config())
            assert time.monotonic() - started < 3
        finally:
            for conn in held:
                pool.putconn(conn)
        assert saver.get_tuple(thread_config()) is None
    message = str(info.value)
    assert "'tiny'" in message
    assert "0.5s" in message
    assert "all 2 connections" in message
    assert isinstance(info.value, PoolTimeout)
    assert isinstance(info.value, TimeoutError)


async def test_exhausted_async_pool_is_a_clear_timeout(dsn: str) -> None:
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=1, timeout=0.3, kwargs={"autocommit": True}, open=False
    ) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        held = await pool.getconn()
        try:
            with pytest.raises(PoolExhaustedError, match="all 1 connections"):
                await saver.aget_tuple(thread_config())
        finally:
            await pool.putconn(held)


def test_threads_share_a_pool_through_a_kill(dsn: str, admin: Admin) -> None:
    """Eight threads writing while every backend is killed: all writes land."""
    app = new_app()
    with PostgresSaver.from_conn_string(
        named(dsn, app), pool_size=4, retry=RetryPolicy(**FAST)
    ) as saver:
        saver.setup()
        configs = [thread_config(uuid.uuid4().hex) for _ in range(8)]
        errors: list[BaseException] = []

        def work(config: dict) -> None:
            try:
                for step in range(10):
                    cp, versions = checkpoint(saver, step)
                    saver.put(config, cp, {"step": step}, versions)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in configs]
        for t in threads:
            t.start()
        time.sleep(0.05)
        admin.terminate(app)
        for t in threads:
            t.join(30)
        assert not errors
        for config in configs:
            assert len(list(saver.list(config))) == 10
