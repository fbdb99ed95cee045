"""ProjectBackend against deepagents' own backends: one sequence of operations, field by field.

The sequence (writes, reads with every kind of window, ls, grep, glob, edits, uploads of text
and binary, downloads, deletes, and the failures: missing file, ambiguous edit, missing text,
empty window, offset past the end, a refused glob, a binary edit) runs on:

- deepagents' `StateBackend`, inside a graph node (it reads and writes graph state), and
- deepagents' `FilesystemBackend` on a temporary directory (virtual mode),
- our backend on a project in PostgreSQL.

Where the two deepagents backends agree, ours must give the same result; where they disagree
(they do on a few cases: the empty-file reminder, ls of a missing directory, wording of some
errors), ours must give StateBackend's. Timestamps are left out of the comparison (each backend
stamps its own writes) and lists are compared in path order. Differences we chose are tested
one by one below and listed in `DELIBERATE_DIFFERENCES` (docs/deep-agents.md explains them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from deepagents.backends import FilesystemBackend, StateBackend
from deepagents.backends.protocol import BackendProtocol
from deepagents.middleware.filesystem import FilesystemState
from langgraph.graph import END, START, StateGraph

from app_data.tools.backend import DELIBERATE_DIFFERENCES, ProjectBackend

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200, 256))

OPERATIONS: list[tuple[Any, ...]] = [
    ("write", "/src/app.py", "import os\n\nprint('hello')\nx = 1\n"),
    ("write", "/src/util.py", "def f():\n    return 'hello'\n"),
    ("write", "/src/deep/inner.py", "hello = 'inner'\n"),
    ("write", "/docs/guide.md", "# Guide\nhello world\nsecond\nthird hello\n"),
    ("write", "/notes.txt", "no newline at end"),
    ("write", "/crlf.txt", "one\r\ntwo\r\nthree\r\n"),
    ("read", "/src/app.py", 0, 2000),
    ("read", "/src/app.py", 1, 2),
    ("read", "/src/app.py", 2, 2),
    ("read", "/src/app.py", -3, 1),
    ("read", "/src/app.py", 0, 0),
    ("read", "/src/app.py", 0, -5),
    ("read", "/src/app.py", 99, 10),
    ("read", "/src/app.py", 4, 10),
    ("read", "/notes.txt", 0, 10),
    ("read", "/crlf.txt", 1, 1),
    ("read", "/crlf.txt", 0, 100),
    ("read", "/missing.txt", 0, 10),
    ("ls", "/"),
    ("ls", "/src"),
    ("ls", "/src/"),
    ("grep", "hello", None, None, None),
    ("grep", "hello", "/src", None, None),
    ("grep", "hello", "/src/util.py", None, None),
    ("grep", "hello", None, "*.md", None),
    ("grep", "hello", None, "src/**/*.py", None),
    ("grep", "hello", "/docs", None, 1),
    ("grep", "hello", "/docs", None, 2),
    ("grep", "hello", None, None, 5),
    ("grep", "hello", None, None, 0),
    ("grep", "HELLO", None, None, None),
    ("grep", "absent text", None, None, None),
    ("grep", "100%", None, None, None),
    ("grep", "hello", None, "../*.py", None),
    ("glob", "*.py", None),
    ("glob", "**/*.py", None),
    ("glob", "src/*.py", None),
    ("glob", "*.py", "/src"),
    ("glob", "/*.txt", None),
    ("glob", "*.{md,txt}", None),
    ("glob", "../*.py", None),
    ("edit", "/src/app.py", "x = 1", "x = 2", False),
    ("edit", "/docs/guide.md", "hello", "bye", False),
    ("edit", "/docs/guide.md", "nowhere", "bye", False),
    ("edit", "/docs/guide.md", "", "bye", False),
    ("edit", "/docs/guide.md", "hello", "bye", True),
    ("edit", "/missing.txt", "a", "b", False),
    ("read", "/docs/guide.md", 0, 2000),
    ("upload", [("/img/logo.png", PNG), ("/data/plain.txt", b"plain bytes\n")]),
    ("download", ["/img/logo.png", "/data/plain.txt", "/notes.txt", "/missing.txt"]),
    ("read", "/img/logo.png", 0, 2000),
    ("edit", "/img/logo.png", "PNG", "GIF", False),
    ("grep", "PNG", None, None, None),
    ("delete", "/src"),
    ("delete", "/missing.txt"),
    ("ls", "/"),
    ("read", "/src/app.py", 0, 10),
    ("glob", "**/*.py", None),
]


def _plain(value: Any) -> Any:
    """A result as plain data, without timestamps, lists of entries in path order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in ("created_at", "modified_at")}
    if isinstance(value, list):
        items = [_plain(v) for v in value]
        entries = all(isinstance(i, dict) and "path" in i for i in items)
        if items and entries and not any("error" in i for i in items):  # not upload/download
            items.sort(key=lambda i: (i["path"], i.get("line", 0)))
        return items
    return value


def _call(backend: BackendProtocol, op: tuple[Any, ...]) -> Any:
    name, *args = op
    if name == "grep":
        pattern, path, glob, max_count = args
        return backend.grep(pattern, path, glob, max_count=max_count)
    method = {"upload": "upload_files", "download": "download_files"}.get(name, name)
    return getattr(backend, method)(*args)


async def _acall(backend: ProjectBackend, op: tuple[Any, ...]) -> Any:
    name, *args = op
    if name == "grep":
        pattern, path, glob, max_count = args
        return await backend.agrep(pattern, path, glob, max_count=max_count)
    method = {"upload": "upload_files", "download": "download_files"}.get(name, name)
    return await getattr(backend, "a" + method)(*args)


def _run_on_state_backend(operations: list[tuple[Any, ...]]) -> list[Any]:
    """Run `operations` on a StateBackend inside one node of a graph holding deepagents' state."""
    results: list[Any] = []
    backend = StateBackend()

    def node(state: dict[str, Any]) -> dict[str, Any]:
        results.extend(_plain(_call(backend, op)) for op in operations)
        return {}

    graph = StateGraph(FilesystemState)
    graph.add_node("work", node)
    graph.add_edge(START, "work")
    graph.add_edge("work", END)
    graph.compile().invoke({"messages": []})
    return results


def _run_on_filesystem(root: Path, operations: list[tuple[Any, ...]]) -> list[Any]:
    backend = FilesystemBackend(root_dir=root, virtual_mode=True)
    return [_plain(_call(backend, op)) for op in operations]


async def test_every_operation_matches_deepagents_backends(
    backend: ProjectBackend, tmp_path: Path
) -> None:
    state = _run_on_state_backend(OPERATIONS)
    files = _run_on_filesystem(tmp_path, OPERATIONS)
    ours = [_plain(await _acall(backend, op)) for op in OPERATIONS]
    mismatches = []
    for op, mine, in_state, on_disk in zip(OPERATIONS, ours, state, files, strict=True):
        if mine != in_state:
            agreed = "both deepagents backends" if in_state == on_disk else "StateBackend"
            mismatches.append(f"{op[:3]}: ours {mine!r}\n   {agreed} {in_state!r}")
    assert not mismatches, "\n".join(mismatches)


async def test_the_two_deepagents_backends_disagree_only_where_documented(
    backend: ProjectBackend, tmp_path: Path
) -> None:
    # Keeps the comparison above honest: it must not pass because every case disagrees.
    state = _run_on_state_backend(OPERATIONS)
    files = _run_on_filesystem(tmp_path, OPERATIONS)
    agreed = sum(a == b for a, b in zip(state, files, strict=True))
    assert agreed >= len(OPERATIONS) * 3 // 4


# -- the deliberate differences, one test each ---------------------------------------------------


async def test_a_refused_path_is_an_error_result_not_an_exception(
    backend: ProjectBackend, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="traversal"):
        FilesystemBackend(root_dir=tmp_path, virtual_mode=True).read("/../etc/passwd")
    read = await backend.aread("/../etc/passwd")
    assert read.error == "Error: Path traversal not allowed: /../etc/passwd"
    write = await backend.awrite("/a\\b.txt", "x")
    assert write.error is not None
    assert "backslash" in write.error
    assert (await backend.als("/")).entries == []
    assert "bad_path" in DELIBERATE_DIFFERENCES


async def test_an_edit_that_changes_nothing_is_refused(backend: ProjectBackend) -> None:
    await backend.awrite("/a.txt", "same\n")
    result = await backend.aedit("/a.txt", "same", "same")
    assert result.error is not None
    assert "would change nothing" in result.error
    assert "no_op_edit" in DELIBERATE_DIFFERENCES


async def test_a_missing_old_string_has_one_message_even_for_a_trailing_newline(
    backend: ProjectBackend,
) -> None:
    await backend.awrite("/a.txt", "last line")
    result = await backend.aedit("/a.txt", "last line\n", "x")
    assert result.error == "Error: String not found in file: 'last line\n'"
    assert "eof_newline_hint" in DELIBERATE_DIFFERENCES


async def test_lines_break_at_newlines_only(backend: ProjectBackend) -> None:
    await backend.awrite("/a.txt", "one\rtwo\n")
    read = await backend.aread("/a.txt")
    assert read.total_lines == 1
    assert read.file_data is not None
    assert read.file_data["content"] == "one\ntwo\n"  # \r shown as a break, not counted as one
    assert "line_breaks" in DELIBERATE_DIFFERENCES


async def test_grep_and_glob_list_in_path_order(backend: ProjectBackend) -> None:
    await backend.awrite("/b.txt", "hit\n")
    await backend.awrite("/a.txt", "hit\n")
    first = await backend.agrep("hit", max_count=1)
    assert first.matches == [{"path": "/a.txt", "line": 1, "text": "hit"}]
    assert first.truncated
    found = await backend.aglob("*.txt")
    assert [m["path"] for m in found.matches or []] == ["/a.txt", "/b.txt"]
    assert "order" in DELIBERATE_DIFFERENCES


async def test_binary_is_decided_by_how_the_file_was_stored(backend: ProjectBackend) -> None:
    await backend.awrite("/picture.png", "text written by the agent\n")
    read = await backend.aread("/picture.png")
    assert read.file_data is not None
    assert read.file_data["encoding"] == "utf-8"
    assert read.start_line == 1
    assert "binary_by_encoding" in DELIBERATE_DIFFERENCES
