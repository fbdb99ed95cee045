"""Users and projects; the None-or-typed-error contract; timezone-aware UTC timestamps.

docs/audit.md maps each finding of the audit to the tests that cover it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from app_data import (
    AppDataService,
    ConflictError,
    Database,
    InvalidInputError,
    Plan,
    ProjectStatus,
    ProjectType,
    SandboxState,
    UnknownUserError,
    UserStatus,
)
from app_data.models import UTCDateTime
from app_data.schemas import ProjectRecord
from tests.app_data.conftest import FakeClock, StatementLog, new_project


async def test_create_and_get_a_user_with_the_documented_defaults(
    service: AppDataService,
) -> None:
    user = await service.create_user("0xABCDEF", username="ada")
    assert user.current_plan is Plan.FREE
    assert user.status is UserStatus.ACTIVE
    assert await service.get_user(user.id) == user
    assert await service.get_user_by_wallet("0xABCDEF") == user


async def test_a_taken_wallet_address_is_a_conflict(service: AppDataService) -> None:
    await service.create_user("0xsame")
    with pytest.raises(ConflictError, match="walletAddress"):
        await service.create_user("0xsame")


async def test_a_taken_user_id_is_a_conflict(service: AppDataService) -> None:
    await service.create_user("0xa", id="user-1")
    with pytest.raises(ConflictError):
        await service.create_user("0xb", id="user-1")


async def test_a_project_for_an_unknown_user_is_a_typed_error(service: AppDataService) -> None:
    with pytest.raises(UnknownUserError):
        await service.create_project("nobody", "p", ProjectType.GAME)


async def test_a_new_project_has_the_documented_defaults(
    service: AppDataService, project: ProjectRecord
) -> None:
    assert project.status is ProjectStatus.ACTIVE
    assert project.sandbox_state is SandboxState.NONE
    assert project.ended_at is None
    assert project.created_at == project.updated_at == project.last_active
    assert await service.get_project(project.id) == project


async def test_server_defaults_match_the_python_defaults(db: Database, migrated: str) -> None:
    # Another writer (the platform backend) inserting only the required columns.
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("""INSERT INTO users (id, "walletAddress") VALUES ('u1', '0x1')""")
        conn.execute(
            """INSERT INTO "Project" (id, "userId", name, type) VALUES ('p1', 'u1', 'n', 'GAME')"""
        )
    service = AppDataService(db)
    user = await service.get_user("u1")
    project = await service.get_project("p1")
    assert user is not None
    assert project is not None
    assert (user.current_plan, user.status) == (Plan.FREE, UserStatus.ACTIVE)
    assert (project.status, project.sandbox_state) == (ProjectStatus.ACTIVE, SandboxState.NONE)
    now = datetime.now(timezone.utc)
    for stamp in (user.created_at, user.updated_at, project.created_at, project.last_active):
        assert stamp.tzinfo is timezone.utc
        assert abs((now - stamp).total_seconds()) < 60


async def test_list_user_projects_pages_newest_first_and_stably(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    user = await clocked_service.create_user("0xpager")
    created = []
    for i in range(7):
        clock.advance(seconds=1)
        created.append(await clocked_service.create_project(user.id, f"p{i}", ProjectType.GAME))
    other = await clocked_service.create_user("0xother")
    await clocked_service.create_project(other.id, "not mine", ProjectType.GAME)

    names: list[str] = []
    page = await clocked_service.list_user_projects(user.id, limit=3)
    names += [p.name for p in page.items]
    clock.advance(seconds=1)
    await clocked_service.create_project(user.id, "newest", ProjectType.GAME)  # behind cursor
    while page.next_cursor:
        page = await clocked_service.list_user_projects(user.id, limit=3, cursor=page.next_cursor)
        names += [p.name for p in page.items]

    assert names == [f"p{i}" for i in reversed(range(7))]


async def test_update_project_status_and_ended_at(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    project = await new_project(clocked_service)
    ended_when = clock.advance(hours=1)
    ended = await clocked_service.update_project_status(project.id, ProjectStatus.ENDED)
    assert ended is not None
    assert ended.status is ProjectStatus.ENDED
    assert ended.ended_at == ended.updated_at == ended_when
    again = await clocked_service.update_project_status(project.id, "ACTIVE")
    assert again is not None
    assert again.ended_at is None


async def test_update_sandbox_state_tracks_the_active_sandbox(
    service: AppDataService, project: ProjectRecord
) -> None:
    running = await service.update_sandbox_state(project.id, "RUNNING", sandbox_id="sbx-1")
    assert running is not None
    assert (running.sandbox_state, running.active_sandbox_id) == (SandboxState.RUNNING, "sbx-1")
    paused = await service.update_sandbox_state(project.id, SandboxState.PAUSED)
    assert paused is not None
    assert paused.active_sandbox_id == "sbx-1"
    killed = await service.update_sandbox_state(project.id, SandboxState.KILLED)
    assert killed is not None
    assert killed.active_sandbox_id is None


async def test_touch_project_sets_last_active(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    project = await new_project(clocked_service)
    later = clock.advance(minutes=3)
    touched = await clocked_service.touch_project(project.id)
    assert touched is not None
    assert touched.last_active == later
    assert touched.updated_at == project.updated_at


async def test_not_found_is_none_everywhere(service: AppDataService) -> None:
    assert await service.get_user("ghost") is None
    assert await service.get_user_by_wallet("0xghost") is None
    assert await service.get_project("ghost") is None
    assert await service.update_project_status("ghost", ProjectStatus.PAUSED) is None
    assert await service.update_sandbox_state("ghost", SandboxState.NONE) is None
    assert await service.touch_project("ghost") is None
    assert await service.get_file("ghost", "a.txt") is None
    assert await service.delete_file("ghost", "a.txt") is None
    page = await service.list_user_projects("ghost")
    assert (page.items, page.next_cursor) == ([], None)


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("create_user", {"wallet_address": ""}),
        ("create_user", {"wallet_address": "has space"}),
        ("create_user", {"wallet_address": "0x1", "username": "a\x00"}),
        ("create_user", {"wallet_address": "0x1", "current_plan": "GOLD"}),
        ("create_user", {"wallet_address": "0x1", "unexpected": 1}),
        ("create_project", {"user_id": "u", "name": "", "type": "GAME"}),
        ("create_project", {"user_id": "u", "name": "x" * 256, "type": "GAME"}),
        ("create_project", {"user_id": "u", "name": "n", "type": "SPACESHIP"}),
        ("create_project", {"user_id": "u", "name": "n", "type": "GAME", "metadata": [1]}),
        ("update_project_status", {"project_id": "p", "status": "DONE"}),
        ("update_sandbox_state", {"project_id": "p", "state": "ON"}),
        ("list_user_projects", {"user_id": "u", "limit": 0}),
        ("list_user_projects", {"user_id": "u", "limit": 501}),
        ("list_user_projects", {"user_id": "u", "cursor": "garbage"}),
        ("get_user", {"user_id": "../../etc"}),
    ],
)
async def test_invalid_arguments_raise_typed_errors_before_any_statement(
    validating_service: AppDataService, unsent: StatementLog, call: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInputError):
        await getattr(validating_service, call)(**kwargs)
    assert unsent.statements == []


# -- time ---------------------------------------------------------------------------------------


async def test_every_returned_timestamp_is_aware_utc(
    service: AppDataService, project: ProjectRecord
) -> None:
    file = await service.save_file(project.id, "a.txt", "x")
    thought = await service.save_thought(project.id, "note", "x")
    user = await service.get_user(project.user_id)
    assert user is not None
    for stamp in (
        user.created_at,
        project.created_at,
        project.last_active,
        file.created_at,
        file.updated_at,
        thought.created_at,
    ):
        assert stamp.tzinfo is timezone.utc


async def test_user_timestamps_read_back_equal_to_what_was_returned(
    service: AppDataService,
) -> None:
    user = await service.create_user("0xms")
    assert user.created_at.microsecond % 1000 == 0  # users keeps milliseconds (TIMESTAMP(3))
    assert await service.get_user(user.id) == user


async def test_utc_is_stored_whatever_the_session_time_zone(migrated: str) -> None:
    options = conninfo_to_dict(migrated).get("options", "")
    tokyo = make_conninfo(migrated, options=f"{options} -c TimeZone=Asia/Tokyo")
    clock = FakeClock(datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc))
    async with Database(tokyo) as db:
        service = AppDataService(db, clock=clock)
        project = await new_project(service)
        assert project.created_at == clock.now
    with psycopg.connect(migrated) as conn:
        row = conn.execute(
            'SELECT created_at::text FROM "Project" WHERE id = %s', (project.id,)
        ).fetchone()
    assert row == ("2025-06-01 12:00:00",)


async def test_a_non_utc_aware_clock_is_converted_to_utc(db: Database) -> None:
    from datetime import timedelta

    paris = timezone(timedelta(hours=2))
    service = AppDataService(db, clock=lambda: datetime(2025, 6, 1, 14, 0, tzinfo=paris))
    project = await new_project(service)
    assert project.created_at == datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert project.created_at.tzinfo is timezone.utc


async def test_a_naive_clock_is_refused(db: Database) -> None:
    service = AppDataService(db, clock=lambda: datetime(2025, 1, 1))
    with pytest.raises(InvalidInputError, match="naive"):
        await service.create_user("0xnaive")


def test_the_column_type_refuses_naive_datetimes() -> None:
    column = UTCDateTime(6)
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2025, 1, 1), None)  # type: ignore[arg-type]
    aware = datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    assert UTCDateTime(3).process_bind_param(aware, None) == datetime(  # type: ignore[arg-type]
        2025, 1, 1, 0, 0, 0, 123000
    )
