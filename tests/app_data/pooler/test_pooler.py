"""app_data through PgBouncer in transaction mode: migrations and 16 concurrent service users.

`Database(url, pooler=True)` (or ``pgbouncer=true`` in a URL, or a pooler port) takes a
``NullPool`` and connections without prepared statements; each unit of work is one
transaction, so one server connection. Every client must read back exactly its own rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app_data import AppDataService, Database, ProjectType, migrations
from tests.app_data.conftest import FAST_RETRY
from tests.support.pooler import CLIENTS

ROUNDS = 6


@pytest.fixture
async def pooled_db(pooled_dsn: str) -> AsyncIterator[Database]:
    db = Database(pooled_dsn, pooler=True, **FAST_RETRY)
    assert db.target.pooler
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


async def test_migrations_from_many_clients_at_once(pooled_dsn: str) -> None:
    """The migration lock is transaction-scoped: concurrent upgrades through the pooler
    serialise, and exactly one of them applies each revision."""
    dbs = [Database(pooled_dsn, pooler=True, **FAST_RETRY) for _ in range(CLIENTS)]
    try:
        await asyncio.gather(*(migrations.upgrade(db) for db in dbs))
        heads = {await migrations.current(db) for db in dbs}
        assert len(heads) == 1
        assert None not in heads
    finally:
        await asyncio.gather(*(db.close() for db in dbs))


async def client(service: AppDataService, n: int) -> None:
    user = await service.create_user(f"0xwallet{n}")
    project = await service.create_project(user.id, f"project-{n}", ProjectType.FULLSTACK)
    pid = project.id
    await service.save_files(pid, [(f"src/{i}.py", f"# {n}:{i}\n") for i in range(4)])
    await service.save_file(pid, "README.md", f"readme of {n}", owner=user.id)
    edited = await service.edit_file(pid, "README.md", f"of {n}", f"of client {n}")
    assert edited is not None
    assert edited.content == f"readme of client {n}"
    await service.save_thought(pid, "plan", f"plan of {n}", thread_id=f"t-{n}")
    await service.save_thought(pid, "note", f"note of {n}", owner=user.id)
    await service.delete_file(pid, "src/0.py")
    for i in range(ROUNDS):  # the same statements again and again (a prepare_threshold's bait)
        await service.save_file(pid, f"notes/{i}.md", f"note {i} of {n}")
        note = await service.get_file(pid, f"notes/{i}.md")
        assert note is not None
        assert note.content == f"note {i} of {n}"

    files = await service.list_files(pid, limit=100)
    assert [f.path for f in files.items] == [
        "README.md",
        *(f"notes/{i}.md" for i in range(ROUNDS)),
        "src/1.py",
        "src/2.py",
        "src/3.py",
    ]
    got = await service.get_file(pid, "src/2.py", owner=user.id)
    assert got is not None
    assert got.content == f"# {n}:2\n"
    thoughts = await service.list_thoughts(pid)
    assert sorted(t.content for t in thoughts.items) == [f"note of {n}", f"plan of {n}"]
    assert {t.project_id for t in thoughts.items} == {pid}
    projects = await service.list_user_projects(user.id)
    assert [p.id for p in projects.items] == [pid]
    assert (await service.get_user_by_wallet(f"0xwallet{n}")).id == user.id  # type: ignore[union-attr]


async def test_service_with_concurrent_clients(pooled_db: Database) -> None:
    await migrations.upgrade(pooled_db)
    service = AppDataService(pooled_db)
    await asyncio.gather(*(client(service, n) for n in range(CLIENTS * 2)))
    report = await service.health_check()
    assert report.healthy, report.error
