"""Every Python snippet of README.md and docs/*.md runs against the test server.

A snippet may use the names of `tests.docs.namespace` without defining them; one that is not
meant to run is marked in the Markdown (see `tests.docs.snippets`) and skipped with its reason.
"""

from __future__ import annotations

import ast
import base64
import inspect
import json
import re
from contextlib import AsyncExitStack

import pytest

from tests.docs.namespace import build, free_names
from tests.docs.snippets import DOCUMENTS, Snippet, all_snippets

SNIPPETS = all_snippets()


# An opening fence whose info string names Python in any spelling (``py``, ``python3``, indented).
_PYTHON_FENCE = re.compile(r"^[ \t]*```[ \t]*py(thon)?3?\b", re.MULTILINE)


def test_every_python_block_of_the_docs_is_a_snippet_that_runs() -> None:
    """A Python block the extractor missed would never run, whatever it says."""
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        extracted = [s.line for s in all_snippets() if s.document == document]
        opened = [text.count("\n", 0, m.start()) + 1 for m in _PYTHON_FENCE.finditer(text)]
        assert extracted == opened, document.name
    assert any(s.document.name == "README.md" and not s.no_run for s in SNIPPETS)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.name for s in SNIPPETS])
async def test_snippet_runs(
    snippet: Snippet,
    dsn: str,
    has_pgvector: bool,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if snippet.no_run:
        pytest.skip(f"marked no-run in the Markdown: {snippet.no_run}")
    if snippet.needs == "pgvector" and not has_pgvector:
        pytest.skip("needs pgvector, which the test server lacks (the embedded server has it)")
    if snippet.needs == "citus":  # a schema on a Citus cluster (skips, saying why, without one)
        dsn = request.getfixturevalue("citus_dsn")
    monkeypatch.setenv("APP_DATA_DATABASE_URL", dsn)
    monkeypatch.setenv("CHECKPOINT_PG_DSN", dsn)
    # Keys for the encryption snippet's `RowBoundEncryption.from_env()` (test keys, not secret).
    keys = {
        "k1": base64.b64encode(bytes(32)).decode(),
        "k2": base64.b64encode(bytes([1]) * 32).decode(),
    }
    monkeypatch.setenv("CHECKPOINT_PG_KEYS", json.dumps({"current": "k2", "keys": keys}))
    code = compile(
        snippet.code, snippet.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    async with AsyncExitStack() as stack:
        namespace = await build(free_names(snippet.code), dsn, stack)
        outcome = eval(code, namespace)
        if inspect.iscoroutine(outcome):
            await outcome
