"""Glob patterns matched in PostgreSQL agree with deepagents' own matcher, path by path."""

from __future__ import annotations

import re

import pytest
from deepagents.backends.utils import compile_grep_include_glob

from app_data.errors import InvalidPatternError
from app_data.globs import glob_likes, glob_regex

PATHS = [
    "a.py", "src/a.py", "src/app/main.py", ".env", ".github/workflows/ci.yml", "docs/x.md",
    "docs/.hidden/y.md", "top.py", "src/a.txt", "a/b/c/d.txt", "test1.txt", "testa.txt",
    "x[1].txt", "src/.a.py", "README", "b.yml", "src/app/.cache/z.py", "100%.txt", "a_b.md",
]  # fmt: skip
PATTERNS = [
    "*.py", "**/*.py", "src/**/*.py", "/*.py", "*.yml", "**/*.yml", ".env", "*", "**",
    "src/*", "src/**", "test[0-9].txt", "test[!0-9].txt", "*.{py,md}",
    "{src,docs}/**/*.{py,md}", "a/*/c/*.txt", "?.py", "src/app/*.py", "**/.hidden/*",
    "docs/**", "*.txt", "x\\[1\\].txt", "src/a.*", "**/app/**", "100%.txt", "a_b.*",
]  # fmt: skip


def _like(like: str, path: str) -> bool:
    """SQL LIKE with backslash escapes, in Python."""
    parts, i = [], 0
    while i < len(like):
        char = like[i]
        if char == "\\":
            parts.append(re.escape(like[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.fullmatch("".join(parts), path, re.S) is not None


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_regex_matches_exactly_the_paths_deepagents_matches(pattern: str) -> None:
    theirs = compile_grep_include_glob(pattern)
    ours = re.compile(glob_regex(pattern))
    assert [p for p in PATHS if ours.match(p)] == [p for p in PATHS if theirs(p)]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_like_prefilter_never_drops_a_match(pattern: str) -> None:
    matched = [p for p in PATHS if re.match(glob_regex(pattern), p)]
    likes = glob_likes(pattern)
    assert all(any(_like(like, p) for like in likes) for p in matched)


def test_traversal_in_a_pattern_is_refused_in_deepagents_words() -> None:
    with pytest.raises(InvalidPatternError, match=r"Path traversal not allowed in glob pattern"):
        glob_regex("../*.py")


def test_a_brace_bomb_is_refused() -> None:
    with pytest.raises(InvalidPatternError, match="expands to more than"):
        glob_regex("{a,b}" * 12)
