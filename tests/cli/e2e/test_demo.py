"""`checkpoint-pg demo` itself, against a database of the test server: twice, the second time
reusing what the first made. The password of the DSN never reaches the output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from checkpoint_pg.cli.demo import DEMO_PROJECT_ID, DEMO_USER_ID, run_demo
from tests.support.agent_world import files, thoughts

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "not-to-be-printed-4711"


def _demo_command(dsn: str) -> subprocess.CompletedProcess[str]:
    """`checkpoint-pg demo --dsn DSN` in a process of its own, stdin closed."""
    env = {k: v for k, v in os.environ.items() if k != "CHECKPOINT_PG_DSN"}
    return subprocess.run(
        [sys.executable, "-m", "checkpoint_pg.cli", "demo", "--dsn", dsn],
        cwd=ROOT,
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_demo_command_runs_end_to_end_and_again(database_dsn: str) -> None:
    dsn = make_conninfo(database_dsn, password=PASSWORD)  # the test servers trust; unused
    first = _demo_command(dsn)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert PASSWORD not in output
    assert "password=***" in output
    assert "created user" in output
    assert "[demo] paused: waiting for a human to approve" in output
    assert "killed" in output
    assert "found thread demo-" in output
    assert "final answer: Done:" in output
    ending = first.stdout.rstrip().splitlines()[-4:]
    assert ending[0] == "look at what it wrote:"
    assert ending[1] == "  checkpoint-pg threads --dsn '" + make_conninfo(dsn, password="***") + "'"
    assert ending[2].startswith("  checkpoint-pg history demo-")
    assert "grep: /src/game.py: | 10:" in output  # deepagents' grep, served by PostgreSQL
    assert "edit_file: ERROR String not found in file" in output

    lines: list[str] = []
    again = run_demo(dsn, say=lines.append)
    text = "\n".join(lines)
    assert PASSWORD not in text
    assert "reusing user" in text
    assert (again.user_id, again.project_id) == (DEMO_USER_ID, DEMO_PROJECT_ID)
    assert len(set(again.processes)) == 2
    assert os.getpid() not in again.processes
    assert again.checkpoints == 42
    assert again.files == ["src/game.py", "src/rooms.py"]
    assert again.deleted_files == ["notes/scratch.md"]
    assert again.thoughts == ["plan", "decision", "summary"]
    assert again.final_answer.startswith("Done:")
    assert "Coding style: small modules, type hints and docstrings." in again.memories

    rows = files(database_dsn, DEMO_PROJECT_ID)
    assert sorted(rows) == ["notes/scratch.md", "src/game.py", "src/rooms.py"]
    assert len(thoughts(database_dsn, DEMO_PROJECT_ID)) == 6  # three per run


def test_a_database_holding_part_of_the_schema_is_refused_in_one_line(database_dsn: str) -> None:
    # An enum type of app_data's first migration, left without its tables (a hand clean-up
    # gone halfway): the migration cannot run, and the demo says so without a traceback.
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute("""CREATE TYPE "Plan" AS ENUM ('FREE')""")
    result = _demo_command(make_conninfo(database_dsn, password=PASSWORD))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert PASSWORD not in output
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, output
    assert error_lines[0].startswith("Error: ")
    assert '"Plan"' in error_lines[0] or "Plan" in error_lines[0]
