"""Fixtures for app_data: a migrated schema of its own per test, a Database, a service.

The suite's `dsn` is a libpq key=value string whose ``options`` put a private schema first on
the ``search_path``; app_data accepts libpq strings as they are, so tables land there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app_data import AppDataService, Database, ProjectType, migrations
from app_data.schemas import ProjectRecord

FAST_RETRY = {
    "connect_attempts": 4,
    "connect_backoff_initial": 0.02,
    "connect_backoff_max": 0.1,
    "connect_deadline": 10.0,
}


@pytest.fixture
async def migrated(dsn: str) -> str:
    """The test's DSN, with app_data's migrations applied to its schema."""
    await migrations.upgrade(dsn)
    return dsn


@pytest.fixture
async def db(migrated: str) -> AsyncIterator[Database]:
    database = Database(migrated, pool_size=2, max_overflow=2, **FAST_RETRY)
    await database.connect()
    try:
        yield database
    finally:
        await database.close()


@dataclass
class FakeClock:
    """A clock the test moves by hand (aware UTC)."""

    now: datetime = field(
        default_factory=lambda: datetime(2025, 1, 2, 3, 4, 5, 678901, timezone.utc)
    )

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(db: Database) -> AppDataService:
    return AppDataService(db)


@pytest.fixture
def clocked_service(db: Database, clock: FakeClock) -> AppDataService:
    return AppDataService(db, clock=clock)


async def new_project(service: AppDataService, wallet: str = "0xwallet") -> ProjectRecord:
    user = await service.create_user(wallet)
    return await service.create_project(user.id, "demo", ProjectType.FULLSTACK)


@pytest.fixture
async def project(service: AppDataService) -> ProjectRecord:
    return await new_project(service)


@dataclass
class StatementLog:
    """Statements and transaction events seen by an engine (SQLAlchemy event hooks)."""

    statements: list[str] = field(default_factory=list)
    commits: int = 0
    rollbacks: int = 0

    def reset(self) -> None:
        self.statements.clear()
        self.commits = 0
        self.rollbacks = 0


@contextlib.contextmanager
def statement_log(engine: AsyncEngine) -> Iterator[StatementLog]:
    """Record every statement sent and every COMMIT/ROLLBACK while the block runs."""
    log = StatementLog()
    sync = engine.sync_engine

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        log.statements.append(statement)

    def on_commit(conn: Any) -> None:
        log.commits += 1

    def on_rollback(conn: Any) -> None:
        log.rollbacks += 1

    event.listen(sync, "before_cursor_execute", on_execute)
    event.listen(sync, "commit", on_commit)
    event.listen(sync, "rollback", on_rollback)
    try:
        yield log
    finally:
        event.remove(sync, "before_cursor_execute", on_execute)
        event.remove(sync, "commit", on_commit)
        event.remove(sync, "rollback", on_rollback)


@pytest.fixture
def statements(db: Database) -> Iterator[StatementLog]:
    with statement_log(db.engine) as log:
        yield log


@pytest.fixture
async def unreachable_db() -> AsyncIterator[Database]:
    """A Database at a local port nobody listens on: for checks that must send nothing."""
    database = Database(f"host=127.0.0.1 port={free_port()} dbname=none connect_timeout=1")
    yield database
    await database.close()


@pytest.fixture
def validating_service(unreachable_db: Database) -> AppDataService:
    """A service whose calls can only succeed at validation: any statement would fail."""
    return AppDataService(unreachable_db)


@pytest.fixture
def unsent(unreachable_db: Database) -> Iterator[StatementLog]:
    """Statements sent through `unreachable_db` (there must be none)."""
    with statement_log(unreachable_db.engine) as log:
        yield log


def free_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_address(dsn: str, host: str, port: int) -> str:
    """`dsn` pointing at host:port instead, every other parameter kept."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, host=host, port=str(port), connect_timeout="5")


async def open_upstream(dsn: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a raw stream to the server `dsn` names (TCP or unix socket)."""
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "localhost")
    port = int(str(params.get("port") or 5432))
    if host.startswith("/"):
        return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return await asyncio.open_connection(host, port)


@contextlib.asynccontextmanager
async def tcp_proxy(dsn: str, port: int) -> AsyncIterator[None]:
    """Forward 127.0.0.1:`port` to the server of `dsn` while the block runs."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await open_upstream(dsn)
        for task in (pump(reader, up_writer), pump(up_reader, writer)):
            t = asyncio.ensure_future(task)
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A local port that accepts connections and never answers; yields the port."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()
