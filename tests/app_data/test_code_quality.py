"""Checks on the code and documents themselves.

Audit findings covered: 2.3.1/3.5 (duplicate imports), 3.2 (commit() inside repositories: no
repository or service code may commit or roll back; the session layer does), 1.1/2.5.1/3.1/5.1
(document which models of the full schema are intentionally not mapped, and why).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "app_data"
MODULES = sorted(PACKAGE.rglob("*.py"))

# Every model of the source-of-truth schema the audit names (sections 1.1 and 1.2).
AUDITED_MODELS = {
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
}


def _imported_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:  # module level only: function-local imports are deliberate
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [alias.asname or alias.name for alias in node.names]
    return names


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_name_twice(module: Path) -> None:
    names = _imported_names(ast.parse(module.read_text()))
    duplicates = {n for n in names if names.count(n) > 1}
    assert duplicates == set()


@pytest.mark.parametrize("module", ["repositories.py", "service.py"])
def test_repositories_and_the_service_never_commit_or_roll_back(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"commit", "rollback", "begin", "begin_nested"}
    ]
    assert calls == []


def _unmapped_rows() -> dict[str, str]:
    text = (PACKAGE / "UNMAPPED.md").read_text()
    rows: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\|\s*`(\w+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_audited_model_is_either_mapped_or_documented_as_unmapped() -> None:
    rows = _unmapped_rows()
    assert set(rows) == AUDITED_MODELS
    for model, rest in rows.items():
        targets = re.findall(r"`(app_data\.[\w.]+)`", rest)
        if targets:  # mapped: the named class exists
            for target in targets:
                module, _, name = target.rpartition(".")
                assert hasattr(importlib.import_module(module), name), (model, target)
        else:  # not mapped: a reason of some substance
            reason = rest.strip().strip("|").strip()
            assert len(reason) > 40, model


def test_the_session_layer_lives_in_a_module_named_for_it() -> None:
    # The audit found session management in a file called db_manager.py.
    assert (PACKAGE / "session.py").exists()
    assert not (PACKAGE / "db_manager.py").exists()
