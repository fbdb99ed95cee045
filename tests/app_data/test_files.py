"""Project files: single-transaction saves, one-statement bulk saves, soft delete, pages, paths.

docs/audit.md maps each finding of the audit to the tests that cover it.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text

from app_data import (
    AppDataService,
    ContentTooLargeError,
    Database,
    FileWrite,
    InvalidCursorError,
    InvalidInputError,
    InvalidPathError,
    Limits,
    UnknownProjectError,
)
from app_data.schemas import ProjectRecord, normalize_path
from tests.app_data.conftest import StatementLog, new_project

# -- save one: one statement, one transaction, all or nothing -----------------------------------


async def test_save_file_is_one_statement_in_one_transaction(
    service: AppDataService, project: ProjectRecord, statements: StatementLog
) -> None:
    statements.reset()
    saved = await service.save_file(project.id, "src/main.py", "print('hi')")

    assert saved.path == "src/main.py"
    assert saved.content == "print('hi')"
    assert saved.size_bytes == len("print('hi')")
    assert len(statements.statements) == 1
    assert statements.commits == 1


async def test_a_failure_mid_save_file_leaves_nothing_behind(
    service: AppDataService, db: Database, project: ProjectRecord
) -> None:
    # The upsert has run on the server (file row written, project touched) when this fires:
    # the unit of work must roll all of it back.
    def explode(*args: Any) -> None:
        raise RuntimeError("crash after the statement, before the commit")

    event.listen(db.engine.sync_engine, "after_cursor_execute", explode)
    try:
        with pytest.raises(RuntimeError, match="before the commit"):
            await service.save_file(project.id, "a.txt", "content")
    finally:
        event.remove(db.engine.sync_engine, "after_cursor_execute", explode)

    assert await service.get_file(project.id, "a.txt", include_deleted=True) is None
    after = await service.get_project(project.id)
    assert after is not None
    assert after.last_active == project.last_active


async def test_save_file_upserts_by_project_and_path(
    service: AppDataService, project: ProjectRecord
) -> None:
    first = await service.save_file(project.id, "notes.md", "v1")
    second = await service.save_file(project.id, "./notes.md", "version two")

    assert second.id == first.id
    assert second.content == "version two"
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    page = await service.list_files(project.id)
    assert [f.path for f in page.items] == ["notes.md"]


async def test_save_file_touches_the_project_last_active(
    clocked_service: AppDataService, clock: Any
) -> None:
    project = await new_project(clocked_service)
    later = clock.advance(minutes=5)
    await clocked_service.save_file(project.id, "x.py", "")
    touched = await clocked_service.get_project(project.id)
    assert touched is not None
    assert touched.last_active == later


async def test_save_file_to_an_unknown_project_is_a_typed_error(service: AppDataService) -> None:
    with pytest.raises(UnknownProjectError):
        await service.save_file("no-such-project", "a.txt", "x")


async def test_files_of_different_projects_do_not_collide(service: AppDataService) -> None:
    one = await new_project(service, "0xone")
    two = await new_project(service, "0xtwo")
    await service.save_file(one.id, "same.txt", "one")
    await service.save_file(two.id, "same.txt", "two")
    first = await service.get_file(one.id, "same.txt")
    second = await service.get_file(two.id, "same.txt")
    assert first is not None
    assert first.content == "one"
    assert second is not None
    assert second.content == "two"


# -- save many: ONE statement -------------------------------------------------------------------


async def test_a_bulk_save_of_1000_files_is_one_statement(
    service: AppDataService, project: ProjectRecord, statements: StatementLog
) -> None:
    files = [(f"src/module_{i:04}.py", f"x = {i}\n") for i in range(1000)]
    statements.reset()

    saved = await service.save_files(project.id, files)

    assert len(statements.statements) == 1
    assert statements.commits == 1
    assert [f.path for f in saved] == [path for path, _ in files]
    assert saved[999].content == "x = 999\n"
    page = await service.list_files(project.id, limit=500)
    assert len(page.items) == 500
    assert page.next_cursor is not None


async def test_a_bulk_save_updates_existing_files_in_the_same_statement(
    service: AppDataService, project: ProjectRecord, statements: StatementLog
) -> None:
    old = await service.save_file(project.id, "keep.txt", "old")
    statements.reset()
    saved = await service.save_files(
        project.id, [FileWrite(path="keep.txt", content="new"), {"path": "n.txt", "content": ""}]
    )
    assert len(statements.statements) == 1
    assert saved[0].id == old.id
    assert saved[0].content == "new"


async def test_a_bulk_save_with_one_invalid_file_saves_none_and_sends_nothing(
    service: AppDataService, project: ProjectRecord, statements: StatementLog
) -> None:
    statements.reset()
    with pytest.raises(InvalidPathError):
        await service.save_files(project.id, [("ok.txt", "fine"), ("../escape.txt", "bad")])
    assert statements.statements == []
    assert (await service.list_files(project.id)).items == []


async def test_a_bulk_save_to_an_unknown_project_writes_nothing(service: AppDataService) -> None:
    with pytest.raises(UnknownProjectError):
        await service.save_files("ghost", [("a.txt", "a"), ("b.txt", "b")])


async def test_a_bulk_save_keeps_the_last_content_of_a_repeated_path(
    service: AppDataService, project: ProjectRecord
) -> None:
    saved = await service.save_files(project.id, [("a.txt", "1"), ("./a.txt", "2"), ("b", "3")])
    assert [(f.path, f.content) for f in saved] == [("a.txt", "2"), ("b", "3")]


async def test_a_bulk_save_over_the_batch_limit_is_refused(db: Database) -> None:
    service = AppDataService(db, limits=Limits(max_files_per_batch=3))
    project = await new_project(service)
    with pytest.raises(InvalidInputError, match="more than 3 files"):
        await service.save_files(project.id, [(f"{i}.txt", "") for i in range(4)])


async def test_an_empty_bulk_save_sends_nothing(
    service: AppDataService, project: ProjectRecord, statements: StatementLog
) -> None:
    statements.reset()
    assert await service.save_files(project.id, []) == []
    assert statements.statements == []


# -- soft delete, restore, purge ----------------------------------------------------------------


async def test_delete_file_is_soft_and_the_row_is_recoverable(
    service: AppDataService, project: ProjectRecord
) -> None:
    await service.save_file(project.id, "draft.md", "precious")

    deleted = await service.delete_file(project.id, "draft.md")

    assert deleted is not None
    assert deleted.deleted
    assert await service.get_file(project.id, "draft.md") is None
    assert (await service.list_files(project.id)).items == []
    kept = await service.get_file(project.id, "draft.md", include_deleted=True)
    assert kept is not None
    assert kept.content == "precious"
    listed = await service.list_files(project.id, include_deleted=True)
    assert [f.path for f in listed.items] == ["draft.md"]

    restored = await service.restore_file(project.id, "draft.md")
    assert restored is not None
    assert restored.content == "precious"
    assert not restored.deleted
    assert await service.get_file(project.id, "draft.md") is not None


async def test_delete_restore_and_purge_of_missing_files_return_none(
    service: AppDataService, project: ProjectRecord
) -> None:
    assert await service.delete_file(project.id, "nope.txt") is None
    assert await service.restore_file(project.id, "nope.txt") is None
    assert await service.purge_file(project.id, "nope.txt") is None
    await service.save_file(project.id, "live.txt", "x")
    assert await service.restore_file(project.id, "live.txt") is None  # not deleted
    await service.delete_file(project.id, "live.txt")
    assert await service.delete_file(project.id, "live.txt") is None  # already deleted


async def test_purge_file_removes_the_row_for_good(
    service: AppDataService, project: ProjectRecord
) -> None:
    await service.save_file(project.id, "tmp.txt", "x")
    purged = await service.purge_file(project.id, "tmp.txt")
    assert purged is not None
    assert purged.path == "tmp.txt"
    assert await service.get_file(project.id, "tmp.txt", include_deleted=True) is None
    assert await service.restore_file(project.id, "tmp.txt") is None


async def test_purge_deleted_files_only_removes_those_deleted_long_enough(
    clocked_service: AppDataService, clock: Any
) -> None:
    from datetime import timedelta

    project = await new_project(clocked_service)
    await clocked_service.save_files(project.id, [("old.txt", ""), ("new.txt", ""), ("live", "")])
    await clocked_service.delete_file(project.id, "old.txt")
    clock.advance(days=10)
    await clocked_service.delete_file(project.id, "new.txt")
    clock.advance(days=1)

    assert await clocked_service.purge_deleted_files(project.id, older_than=timedelta(days=7)) == 1
    assert await clocked_service.get_file(project.id, "old.txt", include_deleted=True) is None
    assert await clocked_service.get_file(project.id, "new.txt", include_deleted=True)
    assert await clocked_service.get_file(project.id, "live")


async def test_saving_over_a_deleted_file_revives_it(
    service: AppDataService, project: ProjectRecord
) -> None:
    first = await service.save_file(project.id, "x.txt", "1")
    await service.delete_file(project.id, "x.txt")
    again = await service.save_file(project.id, "x.txt", "2")
    assert again.id == first.id
    assert not again.deleted
    assert again.content == "2"


# -- listing: keyset pages, stable order, prefixes ----------------------------------------------


async def test_list_files_pages_are_stable_while_files_are_added(
    service: AppDataService, project: ProjectRecord
) -> None:
    originals = [f"f{i:02}.txt" for i in range(0, 40, 2)]  # f00, f02, ... f38
    await service.save_files(project.id, [(p, "") for p in originals])

    seen: list[str] = []
    page = await service.list_files(project.id, limit=6)
    seen += [f.path for f in page.items]
    # Files appear before and after the cursor between page requests.
    await service.save_files(project.id, [("f01.txt", ""), ("f39.txt", ""), ("a.txt", "")])
    while page.next_cursor is not None:
        page = await service.list_files(project.id, limit=6, cursor=page.next_cursor)
        seen += [f.path for f in page.items]

    assert seen == sorted(seen)  # stable order, nothing repeated
    assert set(originals) <= set(seen)  # nothing skipped
    assert "f01.txt" not in seen  # inserted behind the cursor
    assert "f39.txt" in seen  # inserted ahead of it


async def test_list_files_by_prefix_matches_literally(
    service: AppDataService, project: ProjectRecord
) -> None:
    await service.save_files(
        project.id,
        [(p, "") for p in ["src/a.py", "src/b/c.py", "srcx/d.py", "s%c/e.py", "s_c/f.py", "t.py"]],
    )
    src = await service.list_files(project.id, prefix="src/")
    assert [f.path for f in src.items] == ["src/a.py", "src/b/c.py"]
    # LIKE wildcards in a prefix are plain characters.
    assert [f.path for f in (await service.list_files(project.id, prefix="s%")).items] == [
        "s%c/e.py"
    ]
    assert [f.path for f in (await service.list_files(project.id, prefix="s_")).items] == [
        "s_c/f.py"
    ]


async def test_list_files_sorts_paths_bytewise(
    service: AppDataService, project: ProjectRecord
) -> None:
    paths = ["b.txt", "B.txt", "a/z.txt", "a.txt", "_x", "é.txt"]
    await service.save_files(project.id, [(p, "") for p in paths])
    listed = [f.path for f in (await service.list_files(project.id)).items]
    assert listed == sorted(paths, key=lambda p: p.encode())


async def test_list_files_with_a_prefix_uses_the_unique_index(
    db: Database, service: AppDataService, project: ProjectRecord
) -> None:
    async with db.transaction() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await session.execute(
                text(
                    'EXPLAIN SELECT path FROM "ProjectFile" WHERE project_id = :p'
                    " AND path LIKE 'src/%' AND path > 'src/a' ORDER BY path LIMIT 10"
                ),
                {"p": project.id},
            )
        )
    assert "ProjectFile_project_id_path_key" in plan
    assert "Sort" not in plan


async def test_a_cursor_from_another_listing_is_refused(
    service: AppDataService, project: ProjectRecord
) -> None:
    await service.save_thought(project.id, "plan", "a")
    await service.save_thought(project.id, "plan", "b")
    thoughts = await service.list_thoughts(project.id, limit=1)
    assert thoughts.next_cursor is not None
    with pytest.raises(InvalidCursorError):
        await service.list_files(project.id, cursor=thoughts.next_cursor)
    with pytest.raises(InvalidCursorError):
        await service.list_files(project.id, cursor="not a cursor!")


# -- validation: paths, content, sizes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("a.txt", "a.txt"),
        ("src//main.py", "src/main.py"),
        ("./src/./main.py", "src/main.py"),
        ("caf\u0065\u0301.txt", "caf\u00e9.txt"),  # NFC
        ("dir with space/x", "dir with space/x"),
        ("~/notes", "~/notes"),
    ],
)
def test_paths_are_normalised(raw: str, normalised: str) -> None:
    assert normalize_path(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("../etc/passwd", "leaves the project"),
        ("src/../../x", "leaves the project"),
        ("a/..", "leaves the project"),
        ("/etc/passwd", "absolute"),
        ("C:/x", "absolute"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control"),
        ("", "empty"),
        (".", "empty"),
        ("src/", "directory"),
        ("x" * 256, "255 bytes"),
        ("/".join(["d" * 200] * 6), "1024 bytes"),
    ],
)
async def test_invalid_paths_are_refused_before_any_statement(
    validating_service: AppDataService, unsent: StatementLog, raw: str, reason: str
) -> None:
    with pytest.raises(InvalidPathError, match=reason):
        await validating_service.save_file("project-1", raw, "x")
    with pytest.raises(InvalidPathError, match=reason):
        await validating_service.delete_file("project-1", raw)
    assert unsent.statements == []


async def test_content_with_a_nul_byte_is_a_typed_error(
    service: AppDataService, project: ProjectRecord
) -> None:
    with pytest.raises(InvalidInputError, match="NUL"):
        await service.save_file(project.id, "bin.dat", "a\x00b")


async def test_content_over_the_size_limit_is_refused(db: Database) -> None:
    service = AppDataService(db, limits=Limits(max_file_bytes=10))
    project = await new_project(service)
    await service.save_file(project.id, "ok.txt", "é" * 5)  # 10 bytes
    with pytest.raises(ContentTooLargeError) as caught:
        await service.save_file(project.id, "big.txt", "é" * 6)  # 12 bytes in UTF-8
    assert (caught.value.size, caught.value.limit) == (12, 10)


@pytest.mark.parametrize("project_id", ["", " ", "a b", "x;drop table", "é", "a" * 129, None, 5])
async def test_malformed_project_ids_are_refused(
    validating_service: AppDataService, unsent: StatementLog, project_id: Any
) -> None:
    with pytest.raises(InvalidInputError):
        await validating_service.save_file(project_id, "a.txt", "x")
    with pytest.raises(InvalidInputError):
        await validating_service.get_file(project_id, "a.txt")
    with pytest.raises(InvalidInputError):
        await validating_service.save_thought(project_id, "note", "x")
    assert unsent.statements == []


async def test_a_lone_surrogate_in_content_is_a_typed_error(
    service: AppDataService, project: ProjectRecord
) -> None:
    with pytest.raises(InvalidInputError, match="Unicode"):
        await service.save_file(project.id, "s.txt", "\ud800")


async def test_files_are_stored_where_the_session_layer_points(migrated: str) -> None:
    # The DSN's search_path schema holds the table: nothing leaked into public.
    with psycopg.connect(migrated) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        row = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'ProjectFile'"
        ).fetchall()
    assert schema is not None
    assert row == [(schema[0],)]
