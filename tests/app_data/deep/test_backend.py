"""ProjectBackend's own promises: scope from the run, ownership, locked edits, the search paths."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph
from sqlalchemy import text
from typing_extensions import TypedDict

from app_data import AppDataService, Database
from app_data.schemas import ProjectRecord
from app_data.tools.backend import ProjectBackend
from app_data.tools.loop import EventLoopThread
from app_data.tools.scope import ToolScope
from tests.app_data.conftest import new_project


class _Empty(TypedDict, total=False):
    seen: str


async def test_the_scope_comes_from_the_run_config(
    service: AppDataService, project: ProjectRecord
) -> None:
    backend = ProjectBackend(service)  # no fixed scope: each call reads the run's
    await ProjectBackend(service, scope=ToolScope(project.user_id, project.id)).awrite(
        "/a.txt", "from the project\n"
    )

    async def node(state: _Empty) -> dict[str, Any]:
        read = await backend.aread("/a.txt")
        assert read.file_data is not None
        return {"seen": read.file_data["content"]}

    graph = StateGraph(_Empty)
    graph.add_node("read", node)
    graph.add_edge(START, "read")
    graph.add_edge("read", END)
    config = {"configurable": {"user_id": project.user_id, "project_id": project.id}}
    result = await graph.compile().ainvoke({}, config)  # type: ignore[arg-type]
    assert result["seen"] == "from the project\n"


async def test_a_call_outside_a_run_without_a_scope_is_an_error_result(
    service: AppDataService,
) -> None:
    result = await ProjectBackend(service).aread("/a.txt")
    assert result.error is not None
    assert "not attached to a project" in result.error


async def test_another_users_project_is_refused_and_left_untouched(
    service: AppDataService, project: ProjectRecord
) -> None:
    other = await new_project(service, wallet="0xother")
    intruder = ProjectBackend(service, scope=ToolScope(other.user_id, project.id))
    result = await intruder.awrite("/x.txt", "mine now")
    assert result.error is not None
    assert "does not belong to user" in result.error
    assert await service.get_file(project.id, "x.txt") is None


async def test_concurrent_edits_never_lose_each_other(
    backend: ProjectBackend, db: Database
) -> None:
    lines = [f"line {i}: todo" for i in range(8)]
    await backend.awrite("/list.txt", "\n".join(lines) + "\n")
    edits = [backend.aedit("/list.txt", f"line {i}: todo", f"line {i}: done") for i in range(8)]
    results = await asyncio.gather(*edits)
    assert all(r.error is None and r.occurrences == 1 for r in results)
    read = await backend.aread("/list.txt")
    assert read.file_data is not None
    assert read.file_data["content"] == "".join(f"line {i}: done\n" for i in range(8))


async def test_grep_gives_context_lines_without_repeating_matches(backend: ProjectBackend) -> None:
    await backend.awrite("/a.txt", "zero\nhit one\nmiddle\nhit two\nafter\nlast\n")
    result = await backend.agrep("hit", context_lines=1)
    assert result.matches == [
        {
            "path": "/a.txt",
            "line": 2,
            "text": "hit one",
            "context_before": [{"line": 1, "text": "zero"}],
            "context_after": [{"line": 3, "text": "middle"}],
        },
        {
            "path": "/a.txt",
            "line": 4,
            "text": "hit two",
            "context_before": [{"line": 3, "text": "middle"}],
            "context_after": [{"line": 5, "text": "after"}],
        },
    ]


async def test_grep_can_ignore_case(service: AppDataService, project: ProjectRecord) -> None:
    scope = ToolScope(project.user_id, project.id)
    await ProjectBackend(service, scope=scope).awrite("/a.txt", "Hello\nHELLO\nbye\n")
    result = await ProjectBackend(service, scope=scope, ignore_case=True).agrep("hello")
    assert [m["line"] for m in result.matches or []] == [1, 2]


async def test_grep_treats_like_wildcards_as_literal_text(backend: ProjectBackend) -> None:
    await backend.awrite("/a.txt", "100% done\n100 percent\na_b\naxb\n")
    assert [m["line"] for m in (await backend.agrep("100%")).matches or []] == [1]
    assert [m["line"] for m in (await backend.agrep("a_b")).matches or []] == [3]


async def test_the_trigram_index_serves_a_literal_grep(
    backend: ProjectBackend, db: Database
) -> None:
    await backend.awrite("/a.txt", "needle\n")
    async with db.transaction() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await session.execute(
                # A tiny table is cheaper to read through the project's index; the benchmark
                # (10,000 files) shows the planner choosing the trigram index by itself.
                text("""EXPLAIN SELECT path FROM "ProjectFile" WHERE content LIKE '%needle%'""")
            )
        )
    assert "ProjectFile_content_trgm_idx" in plan


async def test_delete_is_soft_and_recursive(
    backend: ProjectBackend, service: AppDataService, project: ProjectRecord
) -> None:
    await backend.awrite("/dir/a.txt", "a")
    await backend.awrite("/dir/sub/b.txt", "b")
    await backend.awrite("/dirt.txt", "not under /dir")
    assert (await backend.adelete("/dir")).path == "/dir"
    assert [e["path"] for e in (await backend.als("/")).entries or []] == ["/dirt.txt"]
    restored = await service.restore_file(project.id, "dir/sub/b.txt")
    assert restored is not None
    assert restored.content == "b"


async def test_a_large_file_is_read_a_window_at_a_time(backend: ProjectBackend) -> None:
    await backend.awrite("/big.txt", "".join(f"line {i}\n" for i in range(1, 50_001)))
    read = await backend.aread("/big.txt", offset=25_000, limit=2)
    assert read.file_data is not None
    assert read.file_data["content"] == "line 25001\nline 25002\n"
    assert (read.start_line, read.end_line, read.total_lines, read.next_offset) == (
        25_001,
        25_002,
        50_000,
        25_002,
    )


def test_the_blocking_methods_run_on_the_loop_thread_that_owns_the_database(
    migrated: str,
) -> None:
    with EventLoopThread() as loop:

        async def open_db() -> tuple[Database, ProjectRecord]:
            db = Database(migrated)
            await db.connect()
            return db, await new_project(AppDataService(db))

        db, project = loop.run(open_db())
        try:
            backend = ProjectBackend(
                AppDataService(db), loop=loop, scope=ToolScope(project.user_id, project.id)
            )
            assert backend.write("/a.txt", "blocking\n").error is None
            assert backend.grep("block").matches == [
                {"path": "/a.txt", "line": 1, "text": "blocking"}
            ]
        finally:
            loop.run(db.close())


def test_blocking_calls_without_a_loop_thread_say_how_to_fix_it(
    service: AppDataService, project: ProjectRecord
) -> None:
    backend = ProjectBackend(service, scope=ToolScope(project.user_id, project.id))
    with pytest.raises(RuntimeError, match="async-only"):
        backend.ls("/")


async def test_an_upload_refuses_bad_paths_one_by_one(backend: ProjectBackend) -> None:
    answers = await backend.aupload_files(
        [("/ok.txt", b"fine"), ("/../escape.txt", b"x"), ("/a\\b.txt", b"y")]
    )
    assert [a.error for a in answers] == [None, "invalid_path", "invalid_path"]
    (download,) = await backend.adownload_files(["/ok.txt"])
    assert download.content == b"fine"
