"""Project thoughts: save, recent pages by kind, retention; and no repository ever commits.

docs/audit.md maps each finding of the audit to the tests that cover it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from app_data import (
    AppDataService,
    ContentTooLargeError,
    Database,
    InvalidInputError,
    Limits,
    UnknownProjectError,
)
from app_data.models import ProjectThought
from app_data.repositories import FileRepository, ThoughtRepository
from app_data.schemas import ProjectRecord, ThoughtCreate
from tests.app_data.conftest import FakeClock, StatementLog, new_project


async def test_save_thought_returns_it_and_touches_the_project(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    project = await new_project(clocked_service)
    later = clock.advance(seconds=30)
    thought = await clocked_service.save_thought(
        project.id, "plan", "write the tests first", metadata={"step": 1}, thread_id="thread-1"
    )
    assert (thought.kind, thought.content, thought.metadata) == (
        "plan",
        "write the tests first",
        {"step": 1},
    )
    assert thought.thread_id == "thread-1"
    assert thought.created_at == later
    touched = await clocked_service.get_project(project.id)
    assert touched is not None
    assert touched.last_active == later


async def test_save_thought_is_one_statement_and_one_commit(
    service: AppDataService, project: ProjectRecord, statements: StatementLog
) -> None:
    statements.reset()
    await service.save_thought(project.id, "note", "x")
    assert len(statements.statements) == 1
    assert statements.commits == 1


async def test_list_thoughts_newest_first_filtered_by_kind(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    project = await new_project(clocked_service)
    for i in range(6):
        clock.advance(seconds=1)
        await clocked_service.save_thought(project.id, "plan" if i % 2 else "note", f"t{i}")

    everything = await clocked_service.list_thoughts(project.id)
    assert [t.content for t in everything.items] == ["t5", "t4", "t3", "t2", "t1", "t0"]
    plans = await clocked_service.list_thoughts(project.id, kind="plan")
    assert [t.content for t in plans.items] == ["t5", "t3", "t1"]
    assert plans.next_cursor is None


async def test_thought_pages_are_stable_even_with_equal_timestamps(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    project = await new_project(clocked_service)
    # Same instant for all (one clock reading): the id breaks the tie, pages never overlap.
    for i in range(7):
        await clocked_service.save_thought(project.id, "note", f"t{i}")

    seen: list[str] = []
    page = await clocked_service.list_thoughts(project.id, limit=3)
    seen += [t.id for t in page.items]
    clock.advance(seconds=1)
    await clocked_service.save_thought(project.id, "note", "newer, behind the cursor")
    while page.next_cursor:
        page = await clocked_service.list_thoughts(project.id, limit=3, cursor=page.next_cursor)
        seen += [t.id for t in page.items]

    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)


async def test_keep_latest_thoughts_keeps_exactly_the_newest_n(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    project = await new_project(clocked_service)
    other = await new_project(clocked_service, "0xother")
    for i in range(5):
        clock.advance(seconds=1)
        await clocked_service.save_thought(project.id, "note", f"n{i}")
        clock.advance(milliseconds=1)  # each plan is newer than the note before it
        await clocked_service.save_thought(project.id, "plan", f"p{i}")
        await clocked_service.save_thought(other.id, "note", f"o{i}")

    assert await clocked_service.keep_latest_thoughts(project.id, 2, kind="note") == 3
    notes = await clocked_service.list_thoughts(project.id, kind="note")
    assert [t.content for t in notes.items] == ["n4", "n3"]
    assert len((await clocked_service.list_thoughts(project.id, kind="plan")).items) == 5
    assert len((await clocked_service.list_thoughts(other.id)).items) == 5

    assert await clocked_service.keep_latest_thoughts(project.id, 1) == 6
    assert [t.content for t in (await clocked_service.list_thoughts(project.id)).items] == ["p4"]


async def test_delete_thoughts_older_than_an_age_or_an_instant(
    clocked_service: AppDataService, clock: FakeClock
) -> None:
    project = await new_project(clocked_service)
    await clocked_service.save_thought(project.id, "note", "ancient")
    clock.advance(days=2)
    middle = clock.now
    await clocked_service.save_thought(project.id, "note", "old")
    clock.advance(days=2)
    await clocked_service.save_thought(project.id, "note", "fresh")

    assert await clocked_service.delete_thoughts_older_than(project.id, middle) == 1
    assert await clocked_service.delete_thoughts_older_than(project.id, timedelta(days=1)) == 1
    assert [t.content for t in (await clocked_service.list_thoughts(project.id)).items] == ["fresh"]


async def test_retention_arguments_are_validated(
    service: AppDataService, project: ProjectRecord
) -> None:
    with pytest.raises(InvalidInputError):
        await service.keep_latest_thoughts(project.id, -1)
    with pytest.raises(InvalidInputError):
        await service.delete_thoughts_older_than(project.id, timedelta(days=-1))
    with pytest.raises(InvalidInputError):
        await service.delete_thoughts_older_than(project.id, datetime(2024, 1, 1))  # naive


@pytest.mark.parametrize(
    ("kind", "content", "metadata", "match"),
    [
        ("Plan", "x", None, "kind"),
        ("", "x", None, "kind"),
        ("plan; drop", "x", None, "kind"),
        ("plan", "a\x00b", None, "NUL"),
        ("plan", "x", {"k": "a\x00b"}, "NUL"),
        ("plan", "x", {"k": float("nan")}, "NaN"),
        ("plan", "x", {"k": object()}, "JSON"),
    ],
)
async def test_invalid_thoughts_are_refused_before_any_statement(
    validating_service: AppDataService,
    unsent: StatementLog,
    kind: str,
    content: str,
    metadata: Any,
    match: str,
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        await validating_service.save_thought("project-1", kind, content, metadata=metadata)
    assert unsent.statements == []


async def test_a_thought_over_the_size_limit_is_refused(db: Database) -> None:
    service = AppDataService(db, limits=Limits(max_thought_bytes=4))
    project = await new_project(service)
    with pytest.raises(ContentTooLargeError):
        await service.save_thought(project.id, "note", "12345")


async def test_a_thought_for_an_unknown_project_is_a_typed_error(service: AppDataService) -> None:
    with pytest.raises(UnknownProjectError):
        await service.save_thought("missing", "note", "x")


# -- no manual commits --------------------------------------------------------------------------


class Abort(Exception):
    pass


async def test_repository_writes_in_a_rolled_back_unit_of_work_leave_nothing(
    db: Database, service: AppDataService, project: ProjectRecord, statements: StatementLog
) -> None:
    now = datetime.now(timezone.utc)
    statements.reset()

    async def doomed_unit_of_work() -> None:
        async with db.transaction() as session:
            thoughts = ThoughtRepository(session)
            await thoughts.add(ThoughtCreate(project_id=project.id, kind="note", content="a"), now)
            await thoughts.add(ThoughtCreate(project_id=project.id, kind="note", content="b"), now)
            await thoughts.keep_latest(project.id, 1)
            await thoughts.delete_before(project.id, now)
            await FileRepository(session).upsert(project.id, [("f.txt", "x", 1)], now)
            raise Abort

    with pytest.raises(Abort):
        await doomed_unit_of_work()

    # Had any repository call committed, its work would have survived the rollback.
    assert statements.commits == 0
    assert statements.rollbacks == 1
    assert (await service.list_thoughts(project.id)).items == []
    assert (await service.list_files(project.id)).items == []


async def test_repository_calls_commit_once_at_the_end_of_the_unit_of_work(
    db: Database, project: ProjectRecord, statements: StatementLog
) -> None:
    now = datetime.now(timezone.utc)
    statements.reset()
    async with db.transaction() as session:
        thoughts = ThoughtRepository(session)
        for i in range(3):
            await thoughts.add(
                ThoughtCreate(project_id=project.id, kind="note", content=str(i)), now
            )
        await thoughts.keep_latest(project.id, 1)
        await thoughts.delete_before(project.id, now - timedelta(days=1))
        assert statements.commits == 0
    assert statements.commits == 1
    async with db.transaction() as session:
        assert len(await ThoughtRepository(session).recent(project.id, 10)) == 1


async def test_orm_rows_returned_by_repositories_are_usable_after_the_unit_of_work(
    db: Database, project: ProjectRecord
) -> None:
    async with db.transaction() as session:
        row = await ThoughtRepository(session).add(
            ThoughtCreate(project_id=project.id, kind="note", content="kept"),
            datetime.now(timezone.utc),
        )
    assert isinstance(row, ProjectThought)
    assert row.content == "kept"  # expire_on_commit=False: no lazy reload after commit
