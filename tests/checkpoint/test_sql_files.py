"""The savers' `.sql` files: each parses, and the code renders every statement in them.

Rendering fails with `SqlFileError` when a statement's ``{part}`` is not supplied, so running
every statement-producing function for a schema, and checking that together they rendered
every block of every file, shows that no statement can fail that way at runtime.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from importlib import resources
from types import ModuleType
from typing import Any

import pytest

import checkpoint_pg._sql as saver_sql
from checkpoint_pg._runtime.sqlfile import SqlFile, Statement, load
from checkpoint_pg._sql import history, hot_path, retention, schema, statements, tables, threads

MODULES: tuple[ModuleType, ...] = (
    tables,
    schema,
    hot_path,
    threads,
    history,
    retention,
    statements,
)
SCHEMAS = [None, "a schema"]
# The one statement each kind of saver has no use for: a saver without a schema creates none.
UNUSED = {None: {"create_schema"}, "a schema": {"nothing"}}


def sql_files() -> list[SqlFile]:
    folder = resources.files("checkpoint_pg._sql")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    assert names, "no .sql files found in checkpoint_pg/_sql"
    return [load("checkpoint_pg._sql", name) for name in names]


@pytest.mark.parametrize("file", sql_files(), ids=lambda f: f.path)
def test_every_sql_file_parses_into_named_statements(file: SqlFile) -> None:
    assert file.statements
    for statement in file.statements.values():
        # A comment between blocks would end the previous statement's text; put it in a doc.
        last_line = statement.text.splitlines()[-1].strip()
        assert not last_line.startswith("--"), f"{file.path}: {statement.name} ends in a comment"


def test_the_numbered_migrations_have_no_gap() -> None:
    numbered = [n for n in schema.SCHEMA.statements if n.split("_")[0] in ("official", "own")]
    loaded = [s.name for s in (*schema.OFFICIAL_MIGRATIONS, *schema.OWN_MIGRATIONS)]
    assert sorted(numbered) == sorted(loaded)
    assert len(schema.OFFICIAL_MIGRATIONS) == 10  # the official package's count


def render_everything(name: str | None) -> None:
    """Call every function of checkpoint_pg._sql that renders statements, in every variant."""
    saver_sql.statements_for(name)
    for version in range(len(saver_sql.OFFICIAL_MIGRATIONS)):
        saver_sql.migration_sql(version, name)
    for version in range(len(saver_sql.OWN_MIGRATIONS)):
        saver_sql.migration_sql(version, name, own=True)
    for version in saver_sql.PARTITIONED_TABLES:
        saver_sql.partitioned_table_sql(version, name)
        saver_sql.partition_sql(version, name, 4, 3)
        saver_sql.qualified_table(version, name)
    for count in range(saver_sql.MAX_VALUES_ROWS + 2):
        saver_sql.put_statement(name, count)
        for upsert in (False, True):
            saver_sql.writes_statement(name, count, upsert)
    filters = list(hot_path.LIST_FILTERS)
    for size in range(len(filters) + 1):
        for chosen in itertools.combinations(filters, size):
            for citus, delta in itertools.product((False, True), repeat=2):
                saver_sql.list_statement(name, frozenset(chosen), citus=citus, delta=delta)
    for select in ("select_latest", "select_by_id"):
        saver_sql.select_statement(name, select, delta=True)
    saver_sql.put_delta_statement(name)
    saver_sql.prune_statements_for(name)
    saver_sql.delta_history_statement(name)
    for method in saver_sql.COMPRESSION_CODES:
        saver_sql.set_compression_sql(name or "public", "checkpoint_blobs", "blob", method)
    for first, metadata, idle in itertools.product((False, True), repeat=3):
        for one_thread in (False, True):
            saver_sql.list_threads_statement(
                name, first=first, metadata=metadata, idle=idle, one_thread=one_thread
            )
        saver_sql.thread_candidates_statement(name, first=first, metadata=metadata)
    saver_sql.retention_statements_for(name)


def _cached_functions() -> Iterator[Any]:
    for module in MODULES:
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)) and value is not load:
                yield value


@pytest.fixture
def composed(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[Statement]]:
    """The statements composed while the test runs, with the renderers' caches emptied."""
    seen: set[Statement] = set()
    original: Callable[..., Any] = Statement.compose

    def recording(self: Statement, **parts: Any) -> Any:
        seen.add(self)
        return original(self, **parts)

    for function in _cached_functions():
        function.cache_clear()
    monkeypatch.setattr(Statement, "compose", recording)
    yield seen
    for function in _cached_functions():
        function.cache_clear()


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_code_renders_every_statement_with_all_its_parts(
    name: str | None, composed: set[Statement]
) -> None:
    render_everything(name)  # raises SqlFileError if a part were missing
    # TABLE_LAYOUT and COLUMN_COMPRESSION have no parts and are rendered once, at import.
    assert schema.SCHEMA["table_layout"].text == schema.TABLE_LAYOUT
    assert schema.SCHEMA["column_compression"].text == schema.COLUMN_COMPRESSION
    composed.add(schema.SCHEMA["table_layout"])
    composed.add(schema.SCHEMA["column_compression"])
    every = {s for file in sql_files() for s in file.statements.values()}
    assert {s.name for s in every - composed} == UNUSED[name]


@pytest.mark.parametrize("name", SCHEMAS)
def test_no_rendered_statement_keeps_a_placeholder(name: str | None) -> None:
    texts = [
        *vars(saver_sql.statements_for(name)).values(),
        saver_sql.put_statement(name, 2),
        saver_sql.writes_statement(name, 2, upsert=True),
        saver_sql.list_threads_statement(name, first=True, metadata=True, idle=True),
        *vars(saver_sql.retention_statements_for(name)).values(),
        *vars(saver_sql.prune_statements_for(name)).values(),
        saver_sql.delta_history_statement(name),
    ]
    for text in texts:
        assert not re.search(r"\{[a-z][a-z0-9_]*\}", text), text


def test_a_schema_qualifies_every_table() -> None:
    text = saver_sql.statements_for("a schema").delete_thread
    for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
        assert f'"a schema"."{table}"' in text
