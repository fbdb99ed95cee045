"""The operator commands' statements: all in `checkpoint_pg/cli/ops/queries.sql`, all used.

Every block parses, documents itself, takes only the parts the commands give (the tables,
``{table}``, ``{where}``) and named parameters, renders for the search_path and for a schema,
runs on a seeded database both ways, and is named by some command module; no command module
writes SQL text of its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from checkpoint_pg.cli.ops.common import TABLES, Session, queries
from tests.cli.conftest import CHAT, Seeded

OPS = Path(__file__).resolve().parents[2] / "checkpoint_pg" / "cli" / "ops"
NAMES = sorted(queries().statements)
# The parts a command supplies besides the tables.
OTHER_PARTS = {"table", "where"}


def parts_for(session: Session) -> dict[str, sql.Composable]:
    return {"table": session.identifier("checkpoints"), "where": sql.SQL("TRUE")}


def test_the_file_parses_and_every_block_says_what_it_is_for() -> None:
    assert NAMES
    for name in NAMES:
        assert queries()[name].doc, f"{name} has no comment"


@pytest.mark.parametrize("name", NAMES)
def test_a_block_takes_known_parts_and_named_parameters(name: str) -> None:
    statement = queries()[name]
    assert statement.parts <= set(TABLES) | OTHER_PARTS
    text = statement.text.replace("%%", "")
    assert "%s" not in text, "positional parameter"
    assert re.findall(r"%[^(]", text) == [], "a % that is not a named parameter"


@pytest.mark.parametrize("schema", [None, "ops schema"])
@pytest.mark.parametrize("name", NAMES)
def test_a_block_renders_for_the_search_path_and_for_a_schema(
    name: str, schema: str | None
) -> None:
    session = Session("postgresql://unused", schema, False)
    tables = {part: session.identifier(table) for part, table in TABLES.items()}
    text = queries()[name].compose(**tables, **parts_for(session)).as_string(None)
    assert "{" not in text.replace("'{}'", "")
    for part in queries()[name].parts & set(TABLES):
        assert session.identifier(TABLES[part]).as_string(None) in text
        if schema is not None:
            assert f'"{schema}".' in text


@pytest.mark.parametrize("name", NAMES)
def test_every_block_is_run_by_some_command(name: str) -> None:
    used = [path.name for path in OPS.glob("*.py") if f'"{name}"' in path.read_text()]
    assert used, f"no module in checkpoint_pg/cli/ops runs {name!r}"


def test_the_command_modules_hold_no_sql_text() -> None:
    statement = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|WITH \w+ AS)\b")
    for path in sorted(OPS.glob("*.py")):
        found = statement.findall(path.read_text())
        assert not found, f"{path.name} writes SQL itself: {found}"


def test_the_file_ships_with_the_package() -> None:
    pyproject = (OPS.parents[2] / "pyproject.toml").read_text()
    assert re.search(r'^"checkpoint_pg\.cli\.ops" = \[[^]]*"\*\.sql"', pyproject, re.MULTILINE)


def test_a_table_is_an_identifier_and_its_text_only_a_parameter_value() -> None:
    session = Session("postgresql://unused", "my schema", False)
    assert session.identifier("checkpoints") == sql.Identifier("my schema", "checkpoints")
    assert session.qualified("checkpoints") == '"my schema"."checkpoints"'
    assert Session("postgresql://unused", None, False).qualified("store") == '"store"'


PARAMS: dict[str, Any] = {
    "thread_id": CHAT,
    "thread_ids": [CHAT],
    "checkpoint_ids": ["0"],
    "checkpoint_ns": "",
    "length": 4,
    "prefix": "zzzz",
    "before": None,
    "limit": 3,
    # reencrypt's pages and updates
    "first": True,
    **{f"a{i}": None for i in range(1, 6)},
    "channel": "messages",
    "version": "0",
    "checkpoint_id": "0",
    "task_id": "t",
    "idx": 0,
    "key": "k",
    "old": b"",
    "new": b"",
    "old_value": "{}",
    "new_value": "{}",
    # convert-storage
    "after": None,
    "old_type": "none",
    "new_type": "none",
    "new_blob": b"",
}


@pytest.mark.parametrize("qualified", [False, True], ids=["search_path", "schema"])
def test_every_block_runs_on_a_seeded_database(seeded: Seeded, qualified: bool) -> None:
    with psycopg.connect(seeded.dsn) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    schema = row[0] if qualified else None
    session = Session(seeded.dsn, schema, False)
    try:
        for name in NAMES:
            params = {**PARAMS, "schema": schema, "table": session.qualified("checkpoints")}
            cursor = session.execute(name, params, **parts_for(session))
            assert cursor.description is not None, name
            cursor.fetchall()
    finally:
        session.close()
