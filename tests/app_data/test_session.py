"""Connections: URL validation, settings, masking, start-up retry, health, pooler mode, shutdown.

docs/audit.md maps each finding of the audit to the tests that cover it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import ValidationError
from sqlalchemy import text

from app_data import (
    AppDataService,
    AppDataSettings,
    ConfigurationError,
    Database,
    DatabaseClosedError,
    DatabaseUnavailableError,
    InvalidDatabaseURLError,
    get_settings,
)
from app_data.session import load_settings, parse_database_url
from checkpoint_pg._runtime.retry import DEFAULT_POLICY, RetryPolicy
from tests.app_data.conftest import (
    FAST_RETRY,
    free_port,
    new_project,
    silent_server,
    tcp_proxy,
    with_address,
)

SECRET = "s3cr3t-pw"

# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://app:{SECRET}@db.example.com:5433/appdb?sslmode=require",
        f"postgresql://app:{SECRET}@db.example.com:5433/appdb?sslmode=require",
        f"postgres://app:{SECRET}@db.example.com:5433/appdb?sslmode=require",
        f"host=db.example.com port=5433 user=app password={SECRET} dbname=appdb sslmode=require",
    ],
)
def test_urls_in_every_accepted_form_give_the_same_connection(url: str) -> None:
    target = parse_database_url(url)
    params = conninfo_to_dict(target.conninfo)
    assert {k: params[k] for k in ("host", "port", "user", "password", "dbname", "sslmode")} == {
        "host": "db.example.com",
        "port": "5433",
        "user": "app",
        "password": SECRET,
        "dbname": "appdb",
        "sslmode": "require",
    }
    assert params["connect_timeout"] == "5"  # the package's connect defaults apply
    assert SECRET not in target.masked
    assert SECRET not in repr(target)
    assert "***" in target.masked


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (f"mysql://u:{SECRET}@h/db", "unsupported URL scheme 'mysql'"),
        (f"postgresql+asyncpg://u:{SECRET}@h/db", "driver 'asyncpg' is not supported"),
        (f"postgresql+psycopg2://u:{SECRET}@h/db", "driver 'psycopg2' is not supported"),
        (f"postgresql://u:{SECRET}@h/db?sslmode=requir", "sslmode 'requir' is not one of"),
        (f"postgresql://u:{SECRET}@h/db?colour=blue", "unknown connection parameter 'colour'"),
        (f"host=h password={SECRET} colour=blue", "unknown connection parameter(s) colour"),
        (f"postgresql://u:{SECRET}@h:abc/db", "port 'abc' is not a number"),
        (f"postgresql://u:{SECRET}@h/db?schema=a%20b", "not a plain schema name"),
        (f"postgresql://u:{SECRET}@h/db?pgbouncer=maybe", "must be true or false"),
        (f"postgresql://u:{SECRET}@h/db?ssl=true&sslmode=disable", "contradicts"),
        (f"host='unterminated password={SECRET}", "not a valid"),
        (f"postgresql://u:{SECRET}@[::1/db", "not a valid URL"),
    ],
)
def test_invalid_urls_fail_with_a_clear_secret_free_message(url: str, message: str) -> None:
    with pytest.raises(InvalidDatabaseURLError, match=re.escape(message)) as caught:
        parse_database_url(url)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None or SECRET not in str(caught.value.__cause__)


def test_ssl_modes_come_from_the_url() -> None:
    assert parse_database_url("postgresql://h/db?sslmode=verify-full").sslmode == "verify-full"
    assert parse_database_url("postgresql://h/db?ssl=true").sslmode == "require"
    assert parse_database_url("postgresql://h/db?ssl=false").sslmode == "disable"
    assert parse_database_url("postgresql://h/db?ssl=verify-ca").sslmode == "verify-ca"
    assert parse_database_url("postgresql://h/db").sslmode is None  # libpq's default (prefer)
    root = parse_database_url("postgresql://h/db?sslmode=verify-full&sslrootcert=/ca.pem")
    assert conninfo_to_dict(root.conninfo)["sslrootcert"] == "/ca.pem"


def test_pooler_mode_is_explicit_or_detected() -> None:
    assert parse_database_url("postgresql://h/db?pgbouncer=true").pooler is True
    assert parse_database_url("postgresql://h:6543/db").pooler is True  # Supavisor
    assert parse_database_url("postgresql://h:6432/db").pooler is True  # PgBouncer
    assert parse_database_url("postgresql://h:5432/db").pooler is False
    assert parse_database_url("postgresql://h:6543/db", pooler=False).pooler is False
    assert parse_database_url("postgresql://h:5432/db", pooler=True).pooler is True


def test_a_prisma_schema_parameter_sets_the_search_path() -> None:
    target = parse_database_url("postgresql://h/db?schema=app&options=-c%20work_mem%3D8MB")
    assert conninfo_to_dict(target.conninfo)["options"] == "-c work_mem=8MB -c search_path=app"


# -- settings -----------------------------------------------------------------------------------


def test_settings_are_read_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATA_DATABASE_URL", "postgresql://first/db")
    monkeypatch.setenv("APP_DATA_POOL_SIZE", "7")
    get_settings.cache_clear()
    try:
        first = get_settings()
        monkeypatch.setenv("APP_DATA_DATABASE_URL", "postgresql://second/db")
        assert get_settings() is first
        assert first.pool_size == 7
        assert conninfo_to_dict(first.target().conninfo)["host"] == "first"
    finally:
        get_settings.cache_clear()


def test_the_savers_dsn_variable_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_DATA_DATABASE_URL", raising=False)
    monkeypatch.setenv("CHECKPOINT_PG_DSN", "host=fallback dbname=x")
    assert conninfo_to_dict(load_settings().target().conninfo)["host"] == "fallback"


def test_bad_settings_are_a_configuration_error_that_does_not_echo_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("APP_DATA_DATABASE_URL", raising=False)
    monkeypatch.delenv("CHECKPOINT_PG_DSN", raising=False)
    with pytest.raises(ConfigurationError, match="APP_DATA_DATABASE_URL"):
        load_settings()
    monkeypatch.setenv("APP_DATA_DATABASE_URL", f"postgresql://u:{SECRET}@h/db")
    monkeypatch.setenv("APP_DATA_POOL_SIZE", "lots")
    with pytest.raises(ConfigurationError, match="pool_size") as caught:
        load_settings()
    assert SECRET not in str(caught.value)
    monkeypatch.setenv("APP_DATA_POOL_SIZE", "3")
    monkeypatch.setenv("APP_DATA_DATABASE_URL", f"postgresql+asyncpg://u:{SECRET}@h/db")
    with pytest.raises(InvalidDatabaseURLError) as bad_url:
        load_settings()
    assert SECRET not in str(bad_url.value)


def test_settings_are_immutable_and_derive_the_ssl_mode_on_every_call() -> None:
    settings = load_settings(database_url="postgresql://h/db?sslmode=verify-full")
    with pytest.raises(ValidationError, match="frozen"):
        settings.pool_size = 1
    assert settings.target().sslmode == "verify-full"
    assert settings.target().sslmode == "verify-full"


def test_repr_and_str_never_show_the_password() -> None:
    url = f"postgresql+psycopg://app:{SECRET}@db.example.com/appdb?sslpassword={SECRET}"
    settings = load_settings(database_url=url)
    db = Database(settings)
    shown = [
        repr(settings),
        str(settings),
        repr(settings.target()),
        repr(db),
        str(db),
        repr(db.engine),
        str(db.engine.url),
        repr(db.pool_status()),
    ]
    for text_ in shown:
        assert SECRET not in text_
    assert "db.example.com" in repr(db)  # masked, not hidden: the host still helps
    assert "password=***" in repr(settings)


# -- start-up retry -----------------------------------------------------------------------------


async def test_start_up_retries_then_fails_clearly_when_nothing_listens(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    closed = make_conninfo(with_address(dsn, "127.0.0.1", free_port()), password=SECRET)
    db = Database(closed, **FAST_RETRY)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as caught:
        await db.connect()
    elapsed = time.monotonic() - started

    assert elapsed < 5
    message = str(caught.value)
    assert "after 4 attempt(s)" in message
    assert "Connection refused" in message or "connection" in message.lower()
    assert SECRET not in message
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 3  # attempts 1-3 are followed by a wait, the 4th gives up
    for record in caplog.records:
        assert SECRET not in record.getMessage()
    await db.close()


async def test_start_up_retries_until_the_database_comes_up(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app_data")
    port = free_port()
    db = Database(
        with_address(dsn, "127.0.0.1", port),
        connect_attempts=50,
        connect_backoff_initial=0.02,
        connect_backoff_max=0.1,
        connect_deadline=20.0,
    )
    connecting = asyncio.create_task(db.connect())
    await asyncio.sleep(0.4)
    assert not connecting.done()
    async with tcp_proxy(dsn, port):
        await asyncio.wait_for(connecting, 10)
        assert (await db.health_check()).healthy
        await db.close()

    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) >= 2
    connected = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connected")]
    assert len(connected) == 1
    assert f"after {len(retries) + 1} attempt(s)" in connected[0]


async def test_start_up_does_not_retry_what_retrying_cannot_fix(dsn: str) -> None:
    missing = make_conninfo(dsn, dbname="app_data_no_such_database")
    db = Database(missing, connect_attempts=5, connect_backoff_initial=1.0)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="after 1 attempt") as caught:
        await db.connect()
    assert time.monotonic() - started < 2
    assert "does not exist" in str(caught.value)
    await db.close()


def test_start_up_retries_under_the_shared_policy_within_the_connect_deadline() -> None:
    settings = AppDataSettings(database_url="postgresql://h/db", connect_deadline=30.0)  # type: ignore[arg-type]
    policy = settings.connect_policy()
    assert isinstance(policy, RetryPolicy)
    assert policy.attempts == RetryPolicy(total_budget=30.0).attempts  # as the deadline holds
    assert (policy.base_delay, policy.max_delay, policy.jitter) == (
        DEFAULT_POLICY.base_delay,
        DEFAULT_POLICY.max_delay,
        DEFAULT_POLICY.jitter,
    )
    assert policy.total_budget == 30.0


async def test_one_connect_attempt_turns_the_start_up_retry_off(dsn: str) -> None:
    db = Database(with_address(dsn, "127.0.0.1", free_port()), connect_attempts=1)
    with pytest.raises(DatabaseUnavailableError, match=r"after 1 attempt\(s\)"):
        await db.connect()
    await db.close()


# -- health -------------------------------------------------------------------------------------


async def test_health_check_reports_latency_version_and_pool(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
    report = await db.health_check()

    assert report.healthy
    assert report.error is None
    assert 0 < report.latency_ms < 5000
    assert report.server_version is not None
    assert report.server_version >= 150000
    assert report.pool.kind == "AsyncAdaptedQueuePool"
    assert report.pool.pooled
    assert report.pool.size == 2
    assert report.pool.checked_in is not None
    assert report.pool.checked_in >= 1
    assert report.pool.checked_out == 0
    assert report.as_dict()["pool"]["kind"] == "AsyncAdaptedQueuePool"


async def test_health_check_times_out_on_a_server_that_never_answers(dsn: str) -> None:
    async with silent_server() as port:
        db = Database(with_address(dsn, "127.0.0.1", port))
        started = time.monotonic()
        report = await db.health_check(timeout=0.3)
        elapsed = time.monotonic() - started
        await db.close(timeout=0)
    assert not report.healthy
    assert report.error == "no answer within 0.3s"
    assert elapsed < 3
    assert report.latency_ms >= 300


async def test_health_check_reports_an_unreachable_database_instead_of_raising(
    dsn: str,
) -> None:
    db = Database(make_conninfo(with_address(dsn, "127.0.0.1", free_port()), password=SECRET))
    report = await db.health_check(timeout=5)
    assert not report.healthy
    assert report.error is not None
    assert SECRET not in report.error
    await db.close()
    closed = await db.health_check()
    assert not closed.healthy
    assert closed.error == "the database is closed"


# -- pooler mode --------------------------------------------------------------------------------


async def _prepared_statements_after_repeats(db: Database) -> int:
    async with db.transaction() as session:
        for _ in range(8):
            await session.execute(
                text("SELECT count(*) FROM pg_class WHERE relpages >= :n"), {"n": 0}
            )
        result = await session.execute(text("SELECT count(*) FROM pg_prepared_statements"))
        return int(result.scalar_one())


async def test_pooler_mode_uses_no_client_pool_and_no_prepared_statements(migrated: str) -> None:
    async with Database(migrated, pooler=True) as pooled:
        status = pooled.pool_status()
        assert (status.kind, status.pooled, status.size, status.checked_out) == (
            "NullPool",
            False,
            None,
            None,
        )
        assert "pooler" in status.description
        assert await _prepared_statements_after_repeats(pooled) == 0
        report = await pooled.health_check()
        assert report.healthy
        assert report.pool.kind == "NullPool"
        project = await new_project(AppDataService(pooled))
        assert project.id

    async with Database(migrated, pooler=False) as direct:
        assert direct.pool_status().pooled
        assert await _prepared_statements_after_repeats(direct) > 0


async def test_the_url_ssl_mode_reaches_the_connection(dsn: str) -> None:
    for mode in ("disable", "allow"):  # not "prefer": libpq omits defaults from the report
        async with Database(make_conninfo(dsn, sslmode=mode)) as db, db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            assert driver.info.get_parameters().get("sslmode") == mode
            if mode == "disable":
                result = await conn.execute(
                    text(
                        "SELECT coalesce(bool_or(ssl), false) FROM pg_stat_ssl"
                        " WHERE pid = pg_backend_pid()"
                    )
                )
                assert result.scalar_one() is False


# -- idle pooled connections -------------------------------------------------------------------


def _last_statement_of(dsn: str, pid: int) -> tuple[str, Any] | None:
    """What the server last ran on backend `pid`, and when; None once the backend is gone."""
    with psycopg.connect(dsn, autocommit=True) as monitor:
        return monitor.execute(
            "SELECT query, query_start FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()


async def _backend_pid(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_taken_again_soon_is_not_pinged(migrated: str) -> None:
    async with Database(migrated, pool_size=1, max_overflow=0) as db:  # default pool_ping_after
        pid = await _backend_pid(db)
        before = _last_statement_of(migrated, pid)
        async with db.engine.connect():
            # Checked out, nothing run yet: the server saw no statement since the last unit.
            assert _last_statement_of(migrated, pid) == before
        assert await _backend_pid(db) == pid


async def test_a_connection_idle_past_the_threshold_is_pinged_on_checkout(migrated: str) -> None:
    async with Database(migrated, pool_size=1, max_overflow=0, pool_ping_after=0.2) as db:
        pid = await _backend_pid(db)
        before = _last_statement_of(migrated, pid)
        await asyncio.sleep(0.3)
        async with db.engine.connect():
            after = _last_statement_of(migrated, pid)
        assert after is not None
        assert before is not None
        assert after[1] > before[1]  # a round trip on checkout, before any statement of ours
        assert after[0] != before[0]


async def test_a_connection_killed_while_idle_is_replaced_unseen(migrated: str) -> None:
    async with Database(
        migrated, pool_size=1, max_overflow=0, pool_ping_after=0.2, retry=RetryPolicy.never()
    ) as db:
        pid = await _backend_pid(db)
        await asyncio.sleep(0.3)
        with psycopg.connect(migrated, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):
            if _last_statement_of(migrated, pid) is None:
                break
            await asyncio.sleep(0.01)

        # No retry is allowed: the dead connection never reaches the unit of work.
        replacement = await _backend_pid(db)
        assert replacement != pid
        assert db.pool_status().size == 1


# -- units of work and shutdown -----------------------------------------------------------------


async def test_close_lets_running_units_of_work_finish_and_refuses_new_ones(
    migrated: str,
) -> None:
    db = Database(migrated)
    await db.connect()
    service = AppDataService(db)
    project = await new_project(service)
    inside = asyncio.Event()
    release = asyncio.Event()

    async def long_unit_of_work() -> None:
        async with db.transaction() as session:
            await session.execute(
                text("""UPDATE "Project" SET name = 'renamed' WHERE id = :id"""), {"id": project.id}
            )
            inside.set()
            await release.wait()

    work = asyncio.create_task(long_unit_of_work())
    await inside.wait()
    closing = asyncio.create_task(db.close(timeout=10))
    await asyncio.sleep(0.1)
    assert not closing.done()  # waits for the unit of work
    with pytest.raises(DatabaseClosedError):
        async with db.transaction():
            pass
    release.set()
    await asyncio.wait_for(asyncio.gather(work, closing), 10)

    with psycopg.connect(migrated) as conn:
        row = conn.execute('SELECT name FROM "Project" WHERE id = %s', (project.id,)).fetchone()
    assert row == ("renamed",)  # it committed
    await db.close()  # idempotent


async def test_close_gives_up_waiting_after_its_timeout(
    migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(migrated)
    inside = asyncio.Event()
    never = asyncio.Event()

    async def stuck() -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))
            inside.set()
            await never.wait()

    work = asyncio.create_task(stuck())
    await inside.wait()
    started = time.monotonic()
    await db.close(timeout=0.2)
    assert time.monotonic() - started < 3
    assert any("still running" in r.getMessage() for r in caplog.records)
    # Its connection was closed, not leaked: no session of this test's schema remains.
    name = conninfo_to_dict(migrated)["application_name"]
    with psycopg.connect(migrated) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    assert row == (0,)
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)


async def test_a_connection_lost_mid_unit_of_work_is_a_typed_error(
    db: Database, migrated: str
) -> None:
    async def lose_the_connection() -> None:
        async with db.transaction() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            with psycopg.connect(migrated, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await session.execute(text("SELECT 1"))

    with pytest.raises(DatabaseUnavailableError):
        await lose_the_connection()
    # The pool recovers: the next unit of work gets a fresh connection.
    assert (await db.health_check()).healthy


async def test_an_exhausted_pool_is_a_typed_error(migrated: str) -> None:
    db = Database(migrated, pool_size=1, max_overflow=0, pool_timeout=0.2)

    async def second_unit_of_work() -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))

    async with db, db.transaction() as held:
        await held.execute(text("SELECT 1"))
        with pytest.raises(DatabaseUnavailableError, match="no database connection"):
            await second_unit_of_work()


def test_settings_objects_can_be_passed_with_overrides() -> None:
    base = AppDataSettings(database_url="postgresql://h/db")  # type: ignore[arg-type]
    db = Database(base, pool_size=3)
    assert db.settings.pool_size == 3
    assert base.pool_size == 5


def test_a_schema_through_a_transaction_pooler_is_refused_naming_the_fix() -> None:
    with pytest.raises(InvalidDatabaseURLError, match="ALTER ROLE"):
        parse_database_url("postgresql://h:6432/db?schema=app")
    with pytest.raises(InvalidDatabaseURLError, match="transaction pooler"):
        parse_database_url("postgresql://h/db?options=-csearch_path%3Dapp&pgbouncer=true")
