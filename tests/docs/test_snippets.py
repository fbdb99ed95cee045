"""Every Python snippet of README.md and docs/*.md runs against the test server.

A snippet may use the names of `tests.docs.namespace` without defining them; one that is not
meant to run is marked in the Markdown (see `tests.docs.snippets`) and skipped with its reason.
"""

from __future__ import annotations

import ast
import inspect
from contextlib import AsyncExitStack

import pytest

from tests.docs.namespace import build, free_names
from tests.docs.snippets import Snippet, all_snippets

SNIPPETS = all_snippets()


def test_the_docs_have_snippets_to_run() -> None:
    assert len([s for s in SNIPPETS if s.document.name == "README.md"]) >= 4


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.name for s in SNIPPETS])
async def test_snippet_runs(
    snippet: Snippet, dsn: str, has_pgvector: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if snippet.no_run:
        pytest.skip(f"marked no-run in the Markdown: {snippet.no_run}")
    if snippet.needs == "pgvector" and not has_pgvector:
        pytest.skip("needs pgvector, which the test server lacks (the embedded server has it)")
    monkeypatch.setenv("APP_DATA_DATABASE_URL", dsn)
    monkeypatch.setenv("CHECKPOINT_PG_DSN", dsn)
    code = compile(
        snippet.code, snippet.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    async with AsyncExitStack() as stack:
        namespace = await build(free_names(snippet.code), dsn, stack)
        outcome = eval(code, namespace)
        if inspect.iscoroutine(outcome):
            await outcome
