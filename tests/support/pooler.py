"""PgBouncer in transaction mode between the code under test and the suite's server.

One PgBouncer per session (started when the ``pgbouncer`` binary is present, else every test
that uses it skips saying why; the tests are in tests/checkpoint/pooler, tests/store/pooler
and tests/app_data/pooler), with few server connections per database, so that 8+ concurrent
clients share them transaction by transaction and a session-level leak shows up.

PgBouncer 1.18 refuses the ``options`` startup parameter, so the suite's schema-per-test DSN
(``search_path`` in ``options``) cannot go through it: each test gets a whole database,
reached through PgBouncer with a plain DSN (tables in ``public``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from checkpoint_pg._runtime.dsn import POOLED_PORTS_ENV_VAR, is_pooled
from tests.harness import (
    PGBOUNCER_SKIP_REASON,
    PgBouncer,
    TestServer,
    pgbouncer_binary,
    start_pgbouncer,
)

# Connection options for PgBouncer in transaction mode: no session state, no prepared statements.
POOLED = {"autocommit": True, "prepare_threshold": None}
# Server connections per (database, user): fewer than the clients every test runs at once.
POOL_SIZE = 3
CLIENTS = 8


def require_pgbouncer() -> None:
    if pgbouncer_binary() is None:
        pytest.skip(PGBOUNCER_SKIP_REASON)


@pytest.fixture(scope="session")
def pgbouncer(pg_server: TestServer) -> Iterator[PgBouncer]:
    require_pgbouncer()
    bouncer = start_pgbouncer(pg_server, pool_size=POOL_SIZE)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def pooled_dsn(pgbouncer: PgBouncer, database_dsn: str) -> str:
    """This test's own database, reached through PgBouncer."""
    return pgbouncer.dsn(database_dsn)


def in_threads(n: int, fn: Any) -> None:
    """Run fn(i) in `n` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(n)

    def go(i: int) -> None:
        barrier.wait(10)
        fn(i)

    with ThreadPoolExecutor(n) as pool:
        for future in [pool.submit(go, i) for i in range(n)]:
            future.result()


@pytest.fixture
def any_port_dsn(pooled_dsn: str, pgbouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's database through PgBouncer on its own port (never 6432/6543, nor one the
    environment marks as a pooler): a transaction pooler that only its errors reveal."""
    monkeypatch.delenv(POOLED_PORTS_ENV_VAR, raising=False)
    assert not is_pooled(pooled_dsn)
    return pooled_dsn


@pytest.fixture
def one_server_dsn(pg_server: TestServer, database_dsn: str) -> Iterator[str]:
    """This test's database through a PgBouncer with ONE server connection per database: every
    client shares it, so a prepared statement of one client meets the next one for sure."""
    require_pgbouncer()
    bouncer = start_pgbouncer(pg_server, pool_size=1)
    try:
        yield bouncer.dsn(database_dsn)
    finally:
        bouncer.stop()


def pooler_warnings(records: list[Any], setting: str = "pooler=True") -> list[str]:
    """The WARNING lines that say a transaction pooler was found, naming `setting`."""
    return [
        r.getMessage()
        for r in records
        if r.levelname == "WARNING" and "transaction pooler" in r.getMessage()
        if setting in r.getMessage()
    ]
