"""Server provisioning for the whole suite: one server per session, one database per test.

The logic lives in `tests.harness` so the demo and the benchmarks use the same
code; this file only turns it into fixtures. The fixtures of the cross-package concerns
(faults, poolers, DSNs that cannot connect, an agent's world) live in `tests.support` and are
made visible to every package's folder here.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from checkpoint_pg import PostgresSaver
from store import PostgresStore
from tests.harness import DatabaseFactory, TestServer, provision_server
from tests.support.agent_world import world
from tests.support.citus import citus_dsn, citus_factory
from tests.support.connect import bad_dsn, password_server
from tests.support.failover import async_pair, pair_root, sync_pair
from tests.support.faults import admin, proxy
from tests.support.pooler import pgbouncer, pooled_dsn

__all__ = [
    "admin",
    "async_pair",
    "bad_dsn",
    "citus_dsn",
    "citus_factory",
    "pair_root",
    "password_server",
    "pgbouncer",
    "pooled_dsn",
    "proxy",
    "sync_pair",
    "world",
]


def _prepare_template(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        if available:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TestServer]:
    server = provision_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def db_factory(pg_server: TestServer) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server)
    factory.build_template(_prepare_template)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def dsn(db_factory: DatabaseFactory) -> Iterator[str]:
    """DSN whose search_path is a schema that exists for this test alone (~1 ms to make)."""
    with db_factory.schema() as test_dsn:
        yield test_dsn


@pytest.fixture
def database_dsn(db_factory: DatabaseFactory) -> Iterator[str]:
    """DSN of a whole database for this test alone, for what a schema cannot isolate."""
    with db_factory.database() as test_dsn:
        yield test_dsn


@pytest.fixture
def sync_saver(dsn: str) -> Iterator[PostgresSaver]:
    """A sync saver on a plain connection, tables set up."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        yield saver


@pytest.fixture
def plain_store(dsn: str) -> Iterator[PostgresStore]:
    """One sync store on an autocommit connection, for tests that look at rows directly."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        s = PostgresStore(conn)
        s.setup()
        yield s


@pytest.fixture(scope="session")
def has_pgvector(pg_server: TestServer) -> bool:
    return pg_server.has_extension("vector")


@pytest.fixture
def requires_pgvector(has_pgvector: bool, pg_server: TestServer) -> None:
    if not has_pgvector:
        pytest.skip(
            f"pgvector is not installed on the test server ({pg_server.source}, "
            f"PostgreSQL {pg_server.major_version}); run without CHECKPOINT_PG_TEST_DSN "
            "to use the embedded PostgreSQL 18, which has it"
        )


@pytest.fixture(autouse=True)
def _pgvector_marker(request: pytest.FixtureRequest) -> None:
    """A test marked ``pgvector`` skips, saying why, on a server without the extension."""
    if request.node.get_closest_marker("pgvector") is not None:
        request.getfixturevalue("requires_pgvector")


@pytest.fixture(autouse=True)
def _nocitus_marker(request: pytest.FixtureRequest) -> None:
    """A test marked ``nocitus`` skips, saying why, when the suite runs on a Citus cluster."""
    marker = request.node.get_closest_marker("nocitus")
    if marker is not None and request.getfixturevalue("pg_server").source == "citus":
        pytest.skip(f"not on Citus: {marker.args[0] if marker.args else 'see the test'}")


def pytest_report_header(config: pytest.Config) -> str:
    return "checkpoint-pg: server from $CHECKPOINT_PG_TEST_DSN, else testcontainers, else embedded"
