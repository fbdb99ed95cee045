"""Full-text search over a project's thoughts: ranked, paged, scoped, served by its index."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app_data import AppDataService, Database
from app_data.errors import InvalidCursorError, InvalidInputError, ProjectAccessError
from app_data.schemas import ProjectRecord
from tests.app_data.conftest import FakeClock, new_project


async def _note(service: AppDataService, project: ProjectRecord, kind: str, content: str) -> None:
    await service.save_thought(project.id, kind, content)


async def test_search_finds_thoughts_by_their_words_best_match_first(
    clocked_service: AppDataService, project: ProjectRecord, clock: FakeClock
) -> None:
    await _note(clocked_service, project, "plan", "Store the map of rooms as plain data.")
    clock.advance(seconds=1)
    await _note(clocked_service, project, "decision", "Rooms are data; rooms hold items; rooms!")
    clock.advance(seconds=1)
    await _note(clocked_service, project, "todo", "Write the tests for the parser.")
    page = await clocked_service.search_thoughts(project.id, "rooms")
    assert [t.kind for t in page.items] == ["decision", "plan"]  # more "rooms" ranks first
    assert page.next_cursor is None


async def test_search_reads_stems_and_web_search_syntax(
    service: AppDataService, project: ProjectRecord
) -> None:
    await _note(service, project, "plan", "Parsing commands comes first.")
    await _note(service, project, "plan", "Parsing the map comes later.")
    found = await service.search_thoughts(project.id, "parse -map")
    assert [t.content for t in found.items] == ["Parsing commands comes first."]


async def test_search_pages_through_the_ranking(
    service: AppDataService, project: ProjectRecord
) -> None:
    for i in range(5):
        await _note(service, project, "note", f"item {i} about caching")
    first = await service.search_thoughts(project.id, "caching", limit=2)
    assert first.next_cursor is not None
    second = await service.search_thoughts(project.id, "caching", limit=2, cursor=first.next_cursor)
    third = await service.search_thoughts(project.id, "caching", limit=2, cursor=second.next_cursor)
    seen = [t.id for page in (first, second, third) for t in page.items]
    assert len(seen) == len(set(seen)) == 5
    assert third.next_cursor is None


async def test_search_is_scoped_to_the_project_and_its_owner(
    service: AppDataService, project: ProjectRecord
) -> None:
    other = await new_project(service, wallet="0xother")
    await _note(service, other, "plan", "secret rooms")
    assert (await service.search_thoughts(project.id, "rooms")).items == []
    with pytest.raises(ProjectAccessError):
        await service.search_thoughts(project.id, "rooms", owner=other.user_id)


async def test_search_can_narrow_to_a_kind_and_use_another_language(
    service: AppDataService, project: ProjectRecord
) -> None:
    await _note(service, project, "plan", "running")
    await _note(service, project, "todo", "running")
    assert [
        t.kind for t in (await service.search_thoughts(project.id, "run", kind="todo")).items
    ] == ["todo"]
    simple = await service.search_thoughts(project.id, "run", language="simple")
    assert simple.items == []  # no stemming in 'simple'


@pytest.mark.parametrize(
    ("query", "options"),
    [("", {}), ("a\x00b", {}), ("x", {"language": "english; drop table"}), ("x", {"limit": 0})],
)
async def test_bad_searches_are_refused_before_any_statement(
    service: AppDataService, project: ProjectRecord, query: str, options: dict[str, object]
) -> None:
    with pytest.raises(InvalidInputError):
        await service.search_thoughts(project.id, query, **options)  # type: ignore[arg-type]


async def test_a_cursor_from_another_listing_is_refused(
    service: AppDataService, project: ProjectRecord
) -> None:
    for i in range(3):
        await _note(service, project, "note", f"thought {i}")
    listing = await service.list_thoughts(project.id, limit=1)
    assert listing.next_cursor is not None
    with pytest.raises(InvalidCursorError):
        await service.search_thoughts(project.id, "thought", cursor=listing.next_cursor)


async def test_the_full_text_index_serves_the_search(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await session.execute(
                text(
                    """EXPLAIN SELECT id FROM "ProjectThought" WHERE
                       to_tsvector('english'::regconfig, content)
                       @@ websearch_to_tsquery('english'::regconfig, 'rooms')"""
                )
            )
        )
    assert "ProjectThought_content_fts_idx" in plan
