"""The packages import only downwards: runtime < savers < store < app_data < cli.

docs/architecture.md draws these layers. A module may import its own layer and the layers
below it, never one above; function-level imports count too. `benchmarks` and `tests` are
repository tools above everything and are not checked.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("runtime", "savers", "store", "app_data", "cli", "tools")
# `checkpoint-pg bench` loads the repository's benchmarks when asked for, inside a function.
ALLOWED = {("checkpoint_pg/cli/main.py", "benchmarks.cli")}


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to; None for third-party modules."""
    top = module.split(".")[0]
    if module == "checkpoint_pg._runtime" or module.startswith("checkpoint_pg._runtime."):
        return "runtime"
    if module == "checkpoint_pg.cli" or module.startswith("checkpoint_pg.cli."):
        return "cli"
    if top == "checkpoint_pg":
        return "savers"
    if top in ("store", "app_data"):
        return top
    if top in ("benchmarks", "tests"):
        return "tools"
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from checkpoint_pg import cli` imports checkpoint_pg.cli.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _violations() -> list[str]:
    problems = []
    for package in ("checkpoint_pg", "store", "app_data"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            own = layer_of(module)
            assert own is not None
            for line, imported in _imports(path, module):
                target = layer_of(imported)
                where = path.relative_to(ROOT)
                if (str(where), imported.removesuffix(".main")) in ALLOWED:
                    continue
                if target is not None and LAYERS.index(target) > LAYERS.index(own):
                    problems.append(f"{where}:{line}: {own} imports {imported} ({target})")
    return problems


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert _violations() == []


def test_the_layer_check_sees_a_violation() -> None:
    assert layer_of("checkpoint_pg._runtime.shell") == "runtime"
    assert layer_of("checkpoint_pg.cli.ops.common") == "cli"
    assert layer_of("checkpoint_pg.aio") == "savers"
    assert LAYERS.index(layer_of("store._sql") or "") > LAYERS.index("runtime")


@pytest.mark.parametrize(
    ("package", "must_not_load"),
    [
        ("checkpoint_pg._runtime.shell", ("checkpoint_pg.aio", "store", "app_data")),
        ("store", ("checkpoint_pg.aio", "checkpoint_pg.sync", "app_data", "checkpoint_pg.cli")),
        ("checkpoint_pg", ("store", "app_data", "checkpoint_pg.cli")),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(
    package: str, must_not_load: tuple[str, ...]
) -> None:
    code = (
        f"import sys, {package}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in ('store', 'app_data') "
        f"or m.startswith('checkpoint_pg.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = set(ast.literal_eval(done.stdout))
    assert not {m for m in loaded for bad in must_not_load if m == bad or m.startswith(bad + ".")}
