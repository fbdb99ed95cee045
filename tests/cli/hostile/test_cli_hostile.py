"""Hostile use of the operator commands: a ``y`` piped into a destructive command is not a
person's consent.

Without a terminal on stdin, every command that deletes live data (``delete``, ``prune``,
``sweep`` with a retention policy) stops with a usage error (exit code 2) and one line saying
to pass --yes, and every table is byte-identical afterwards. On a terminal it asks, and only
the answer ``y`` deletes, only what it named.
"""

from __future__ import annotations

import pytest

from tests.cli.conftest import CHAT, NESTED, WAITING, Seeded
from tests.cli.terminal import on_terminal
from tests.support.hostile_cases import count, snapshot

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "store")

DESTRUCTIVE = [
    ("delete", CHAT),
    ("prune", "--keep-latest", "1"),
    ("prune", "--idle-for", "1s"),
    ("sweep", "--keep-latest", "1"),
    ("sweep", "--idle-for", "1s"),
]


@pytest.mark.parametrize("answer", ["y\n", "yes\n", ""], ids=["y", "yes", "nothing"])
@pytest.mark.parametrize("command", DESTRUCTIVE, ids=" ".join)
def test_a_destructive_command_without_a_terminal_needs_yes(
    seeded: Seeded, command: tuple[str, ...], answer: str
) -> None:
    before = snapshot(seeded.dsn, TABLES)

    result = seeded.run(*command, input=answer)

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "pass --yes" in result.stderr
    assert "?" not in result.stderr  # nothing was asked, nothing read
    assert snapshot(seeded.dsn, TABLES) == before


@pytest.mark.parametrize("command", DESTRUCTIVE, ids=" ".join)
def test_yes_runs_a_destructive_command_without_a_terminal(
    seeded: Seeded, command: tuple[str, ...]
) -> None:
    assert seeded.run(*command, "--yes").exit_code == 0


def test_on_a_terminal_delete_asks_and_yes_deletes_only_that_thread(seeded: Seeded) -> None:
    others = {t: ("thread_id = %s", [CHAT]) for t in TABLES[:3]}
    before = snapshot(seeded.dsn, TABLES, others)

    result = on_terminal("delete", CHAT, answer="y", dsn=seeded.dsn)

    assert result.exit_code == 0, result.stderr
    assert f"Delete thread {CHAT} (6 checkpoints)" in result.stderr
    assert count(seeded.dsn, "checkpoints", "thread_id = %s", [CHAT]) == 0
    assert snapshot(seeded.dsn, TABLES, others) == before
    assert count(seeded.dsn, "checkpoints", "thread_id IN (%s, %s)", [WAITING, NESTED]) > 0


@pytest.mark.parametrize("command", DESTRUCTIVE, ids=" ".join)
def test_on_a_terminal_no_changes_nothing(seeded: Seeded, command: tuple[str, ...]) -> None:
    before = snapshot(seeded.dsn, TABLES)

    result = on_terminal(*command, answer="n", dsn=seeded.dsn)

    assert result.exit_code == 1
    assert "Aborted" in result.stderr
    assert snapshot(seeded.dsn, TABLES) == before
