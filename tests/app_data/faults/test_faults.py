"""app_data units of work under the same faults: run again when the fault came before COMMIT
was sent, a typed error (never a second run) when it came while committing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from app_data import AppDataService, Database, ProjectType, migrations
from app_data.errors import CommitOutcomeUnknownError
from checkpoint_pg._runtime.retry import RetryPolicy
from tests.support.faults import FAST, Admin, TableLock, named, new_app


@pytest.fixture
async def app_service(dsn: str) -> AsyncIterator[tuple[AppDataService, str, str]]:
    """A service on this test's schema, its application name and a project id."""
    await migrations.upgrade(dsn)
    app = new_app()
    db = Database(named(dsn, app), pool_size=2, max_overflow=0, retry=RetryPolicy(**FAST))
    await db.connect()
    service = AppDataService(db)
    user = await service.create_user("0x" + "ab" * 20)
    project = await service.create_project(user.id, "faults", next(iter(ProjectType)))
    try:
        yield service, app, project.id
    finally:
        await db.close()


async def test_a_fault_before_commit_runs_the_unit_again(
    app_service: tuple[AppDataService, str, str],
    dsn: str,
    admin: Admin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, app, project_id = app_service
    caplog.set_level(logging.WARNING, "checkpoint_pg.retry")
    lock = TableLock(dsn, '"ProjectThought"')
    try:
        task = asyncio.create_task(service.save_thought(project_id, "note", "kept"))
        admin.kill(await asyncio.to_thread(admin.wait_for_lock_wait, app))
        await asyncio.to_thread(admin.wait_for_lock_wait, app)  # the second run waits too
    finally:
        lock.release()
    thought = await asyncio.wait_for(task, 20)
    page = await service.list_thoughts(project_id)
    assert [t.id for t in page.items] == [thought.id]  # once, not twice
    retries = [r.getMessage() for r in caplog.records if r.name == "checkpoint_pg.retry"]
    assert len(retries) == 1
    assert retries[0].startswith("save_thought failed with AdminShutdown (SQLSTATE 57P01)")


async def test_a_fault_while_committing_is_never_run_again(
    app_service: tuple[AppDataService, str, str],
    dsn: str,
    admin: Admin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, app, project_id = app_service
    caplog.set_level(logging.WARNING, "checkpoint_pg.retry")
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A deferred constraint trigger runs at COMMIT: it holds the commit open long enough
        # to terminate the backend in the middle of it.
        conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$"
        )
        conn.execute(
            'CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON "ProjectThought" '
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
        )
    task = asyncio.create_task(service.save_thought(project_id, "note", "maybe"))

    def committing_pid() -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = admin.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                "AND state = 'active' AND query = 'COMMIT'",
                (app,),
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.01)
        raise AssertionError("the unit of work never reached COMMIT")

    admin.kill(await asyncio.to_thread(committing_pid))
    with pytest.raises(CommitOutcomeUnknownError, match="may or may not have been applied"):
        await asyncio.wait_for(task, 20)
    assert not [r for r in caplog.records if r.name == "checkpoint_pg.retry"]
