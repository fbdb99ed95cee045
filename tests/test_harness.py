"""The test harness itself: isolation between tests and the server order of preference."""

from __future__ import annotations

import os
import time

import psycopg
import pytest

from tests.harness import TEST_DSN_ENV_VAR, DatabaseFactory, TestServer, docker_available


def test_each_test_gets_an_empty_schema_first_in_its_search_path(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchone()
    assert schema is not None
    assert schema[0] != "public"
    assert tables == (0,)


def test_tables_created_unqualified_land_in_the_test_schema(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        row = conn.execute(
            "SELECT table_schema = current_schema() FROM information_schema.tables"
            " WHERE table_name = 't'"
        ).fetchone()
    assert row == (True,)


def test_rows_written_in_one_schema_are_invisible_in_the_next(
    db_factory: DatabaseFactory,
) -> None:
    with db_factory.schema() as first, psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    with db_factory.schema() as second, psycopg.connect(second) as conn:
        row = conn.execute("SELECT to_regclass('t')").fetchone()
    assert row == (None,)


def test_a_schema_is_dropped_even_while_a_client_holds_locks_in_it(
    db_factory: DatabaseFactory,
) -> None:
    with db_factory.schema() as test_dsn:
        lingering = psycopg.connect(test_dsn)
        lingering.execute("CREATE TABLE t (x int)")  # transaction left open, lock held
    assert lingering.closed or lingering.broken or _is_dead(lingering)


def _is_dead(conn: psycopg.Connection) -> bool:  # type: ignore[type-arg]
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_a_whole_database_per_test_is_available(database_dsn: str) -> None:
    with psycopg.connect(database_dsn) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_rows_written_in_one_database_are_invisible_in_the_next(
    db_factory: DatabaseFactory,
) -> None:
    with db_factory.database() as first, psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    with db_factory.database() as second, psycopg.connect(second) as conn:
        row = conn.execute("SELECT to_regclass('public.t')").fetchone()
    assert row == (None,)


def test_a_database_is_dropped_even_while_a_client_is_still_connected(
    db_factory: DatabaseFactory,
) -> None:
    with db_factory.database() as test_dsn:
        lingering = psycopg.connect(test_dsn)
        name = lingering.info.dbname
    with psycopg.connect(db_factory.server.admin_dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is None
    lingering.close()


def test_the_server_is_chosen_in_the_documented_order(pg_server: TestServer) -> None:
    if os.environ.get(TEST_DSN_ENV_VAR):
        assert pg_server.source == "env"
    elif docker_available():
        assert pg_server.source == "testcontainers"
    else:
        assert pg_server.source == "embedded"


def test_docker_probe_answers_fast_when_no_daemon_runs() -> None:
    started = time.perf_counter()
    docker_available()
    # A guard against a probe that hangs on a dead socket, not a performance target.
    assert time.perf_counter() - started < 2.0


def test_the_server_repr_never_shows_the_password() -> None:
    server = object.__new__(TestServer)
    server.admin_dsn = "postgresql://app:s3cr3t@db.example:5432/x"
    server.source = "env"
    assert "s3cr3t" not in repr(server)


@pytest.mark.pgvector
def test_pgvector_is_ready_in_every_database_when_the_server_has_it(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone()
    assert row == (1.0,)
