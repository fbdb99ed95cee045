"""`benchmarks.file_search` at smoke size: both backends find the same files, the table and the
grep's EXPLAIN are printed. The real run (``python -m benchmarks.file_search``) takes minutes."""

from __future__ import annotations

import pytest

pytest.importorskip("deepagents", reason="the deepagents extra is not installed")

from benchmarks.file_search import NEEDLE, OPERATIONS, build_files, main


def test_the_planted_literal_is_in_the_asked_number_of_files() -> None:
    files = build_files(300, 512, planted=7)
    assert sum(NEEDLE in content for content in files.values()) == 7
    assert all(line for content in files.values() for line in content.splitlines())


def test_file_search_smoke(database_dsn: str) -> None:
    lines: list[str] = []
    main(["--dsn", database_dsn, "--smoke"], out=lines.append)
    text = "\n".join(lines)
    for label in OPERATIONS:
        assert f"| {label} |" in text
    assert "EXPLAIN (ANALYZE, BUFFERS) of ours's grep:" in text
    assert "ProjectFile" in text
