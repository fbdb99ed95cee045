"""What the code and the schema-coverage tables of docs/audit.md must keep true together.

docs/audit.md maps each finding of the audit to the tests that cover it.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from sqlalchemy import inspect

from app_data.agent_tables import AgentBase
from app_data.models import Base, Project, User

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "app_data"
AUDIT_DOC = ROOT / "docs" / "audit.md"

# The 20 models of the platform's full schema, as the audit lists them.
FULL_SCHEMA_MODELS = [
    "Users",
    "Project",
    "ProjectFile",
    "ProjectThought",
    "CheckpointBlobs",
    "CheckpointWrites",
    "Checkpoints",
    "CommunityShowcaseApps",
    "Store",
    "ClonedRepository",
    "CodeGenSession",
    "CodeGenRequest",
    "Credits",
    "PayAsYouGo",
    "Subscription",
    "TopUp",
    "Transaction",
    "RefreshToken",
    "Upload",
    "Deployments",
]


def _coverage_rows() -> list[list[str]]:
    """The table rows of the "Schema coverage" section, as lists of cells."""
    text = AUDIT_DOC.read_text()
    section = text.split("\n## Schema coverage\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "Model":  # header row
            continue
        rows.append(cells)
    return rows


def _name(cell: str) -> str | None:
    match = re.fullmatch(r"`([^`]+)`", cell)
    return match.group(1) if match else None


def _mapped_rows() -> list[tuple[str | None, str, str]]:
    """(model or None, table, dotted class path) for each row that names a mapping."""
    mapped = []
    for cells in _coverage_rows():
        if len(cells) == 3:
            table, target = _name(cells[1]), _name(cells[2])
            assert table, cells
            assert target, cells
            mapped.append((_name(cells[0]), table, target))
    return mapped


def test_every_model_of_the_full_schema_is_listed_once() -> None:
    models = [_name(cells[0]) for cells in _coverage_rows() if cells[0]]
    assert sorted(m for m in models if m) == sorted(FULL_SCHEMA_MODELS)


def test_every_mapped_row_names_the_class_that_maps_its_table() -> None:
    for _, table, target in _mapped_rows():
        module, _, name = target.rpartition(".")
        mapped_class = getattr(importlib.import_module(module), name)
        assert mapped_class.__tablename__ == table, target


def test_every_table_app_data_maps_is_listed() -> None:
    mapped_tables = set(Base.metadata.tables) | set(AgentBase.metadata.tables)
    assert sorted(table for _, table, _ in _mapped_rows()) == sorted(mapped_tables)


def test_users_relate_to_no_table_but_their_projects() -> None:
    # Loading a user must never reach into the billing or auth tables of the platform schema.
    assert [r.mapper.class_ for r in inspect(User).relationships] == [Project]


def _named_tests() -> list[tuple[str, str]]:
    """(file, function) for each test docs/audit.md names as `file::function` or `::function`."""
    named = []
    for line in AUDIT_DOC.read_text().splitlines():
        current = None
        for match in re.finditer(r"`(tests/[\w/]+\.py)?::(\w+)`", line):
            current = match.group(1) or current
            assert current, line  # a bare ::name follows a full name on the same line
            named.append((current, match.group(2)))
    return named


def test_every_test_docs_audit_names_exists() -> None:
    named = _named_tests()
    assert named
    missing = []
    for file, function in named:
        tree = ast.parse((ROOT / file).read_text())
        defined = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        if function not in defined:
            missing.append(f"{file}::{function}")
    assert missing == []


# Migrations run their own DDL transactions, before any unit of work exists.
OUTSIDE_THE_SESSION_LAYER = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if path != PACKAGE / "session.py" and "migrations" not in path.relative_to(PACKAGE).parts
)


@pytest.mark.parametrize(
    "module", OUTSIDE_THE_SESSION_LAYER, ids=lambda path: str(path.relative_to(PACKAGE))
)
def test_nothing_outside_the_session_layer_commits_or_rolls_back(module: Path) -> None:
    # Transactions belong to app_data/session.py: one unit of work, one commit at its end.
    # Repositories, the service and the tools only ever run inside a unit of work.
    tree = ast.parse(module.read_text())
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"commit", "rollback", "begin", "begin_nested"}
    ]
    assert calls == []
