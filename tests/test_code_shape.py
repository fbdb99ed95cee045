"""Shapes a reader relies on: short functions, or a docstring that says why one is long."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("checkpoint_pg", "store", "app_data", "benchmarks")

# A function longer than this says why in its docstring, with the words "long on purpose".
LONGEST_FUNCTION = 60


def _long_functions() -> list[str]:
    too_long = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.read_text(encoding="utf-8").startswith("# DO NOT EDIT: generated"):
                continue  # judged in its async source
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                reason = "long on purpose" in (ast.get_docstring(node) or "").lower()
                if lines > LONGEST_FUNCTION and not reason:
                    where = path.relative_to(ROOT)
                    too_long.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return too_long


def test_no_function_is_long_without_saying_why() -> None:
    assert _long_functions() == []
