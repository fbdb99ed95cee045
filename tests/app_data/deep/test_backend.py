"""ProjectBackend's own promises: scope from the run, ownership, locked edits, the search paths."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph
from sqlalchemy import text
from typing_extensions import TypedDict

from app_data import AppDataService, Database
from app_data.repositories import _DIRECTORY_WALK
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


async def test_a_listing_orders_names_whatever_bytes_sort_before_the_slash(
    service: AppDataService, project: ProjectRecord
) -> None:
    # '-', '.' and '!' sort before '/', so "d/a-b" lies between "d/a" and "d/a/x" in the
    # path index; "a0" and "seg0" sit right where a skipped subdirectory ends.
    paths = ["d/a", "d/a/x", "d/a/y/z", "d/a-b", "d/a.txt", "d/a!", "d/a0", "d/ab/c", "d/b"]
    for path in paths:
        await service.save_file(project.id, path, "x" * len(path))
    entries = await service.list_directory(project.id, "d")
    assert [(e.path, e.is_dir) for e in entries] == [
        ("d/a", False),
        ("d/a", True),
        ("d/a!", False),
        ("d/a-b", False),
        ("d/a.txt", False),
        ("d/a0", False),
        ("d/ab", True),
        ("d/b", False),
    ]
    assert [e.size_bytes for e in entries if not e.is_dir] == [3, 4, 5, 7, 4, 3]


async def test_a_listing_skips_deleted_files_and_folders_left_empty(
    service: AppDataService, project: ProjectRecord
) -> None:
    for path in ["top.md", "gone/only.md", "kept/one.md", "kept/two.md", "kept/sub/x.md"]:
        await service.save_file(project.id, path, "x")
    await service.delete_tree(project.id, "gone")
    await service.delete_tree(project.id, "kept/one.md")
    root = await service.list_directory(project.id, "")
    assert [(e.path, e.is_dir) for e in root] == [("kept", True), ("top.md", False)]
    kept = await service.list_directory(project.id, "kept")
    assert [(e.path, e.is_dir) for e in kept] == [("kept/sub", True), ("kept/two.md", False)]
    assert await service.list_directory(project.id, "gone") == []
    assert await service.list_directory(project.id, "nowhere") == []


async def test_a_folder_of_subfolders_is_listed_with_a_probe_per_entry(
    service: AppDataService, project: ProjectRecord, db: Database
) -> None:
    # 20 subfolders of 30 files each: the walk reads one index entry per subfolder (and one
    # to find the end), never the 600 files below them.
    for i in range(20):
        await service.save_files(
            project.id, [(f"src/m{i:02d}/f{j:02d}.py", "pass\n") for j in range(30)]
        )
    entries = await service.list_directory(project.id, "src")
    assert [e.path for e in entries] == [f"src/m{i:02d}" for i in range(20)]
    walk = _DIRECTORY_WALK.format(upper="AND f.path < :upper")
    params = {"project_id": project.id, "prefix": "src/", "n": 4, "upper": "src0"}
    async with db.transaction() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = (
            await session.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + walk), params)
        ).scalar_one()
    read = 0
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == "ProjectFile":
            assert node["Node Type"] in ("Index Scan", "Index Only Scan")
            # EXPLAIN's rows are a per-loop average, rounded: at most one row per probe.
            read += node["Actual Rows"] * node["Actual Loops"]
    assert read <= 21  # a probe per subfolder and one to find the end
