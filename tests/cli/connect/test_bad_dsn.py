"""Every command given a DSN that cannot connect prints one line and exits with code 1.

The line names where (host, port, database, user) and why (libpq's words), never the password.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from checkpoint_pg.cli import main
from tests.support.connect import BOUND, SECRET, BadDsn

COMMANDS = [
    ["setup"],
    ["threads"],
    ["history", "some-thread"],
    ["stats"],
    ["sweep"],
    ["store", "ls"],
    ["demo"],
    ["bench", "--quick"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_command_on_a_dsn_that_cannot_connect_prints_one_line(
    bad_dsn: BadDsn, command: list[str]
) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(main, [*command, "--dsn", bad_dsn.dsn])
    elapsed = time.monotonic() - started

    if result.exit_code == 2 and "pip install" in result.output:
        pytest.skip(f"{command[0]} needs an extra that is not installed: {result.output}")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: cannot connect to ")
    assert bad_dsn.reason in lines[0]
    assert SECRET not in result.output
    assert elapsed < BOUND
