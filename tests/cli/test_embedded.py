"""--embedded: every command can use the demo's embedded server; never together with --dsn."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from checkpoint_pg.cli import main
from tests.cli.conftest import invoke, parsed


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


EVERY_COMMAND = _commands(main)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def _arguments(path: tuple[str, ...]) -> list[str]:
    """A placeholder for each required argument (``history THREAD_ID`` -> ``history x``) and
    required option (``convert-storage --to official``)."""
    placeholders: list[str] = []
    for param in _command(path).params:
        if not param.required:
            continue
        value = param.type.choices[0] if isinstance(param.type, click.Choice) else "x"
        if isinstance(param, click.Option):
            placeholders.append(param.opts[0])
        placeholders.append(str(value))
    return placeholders


def test_every_command_but_bench_takes_embedded() -> None:
    names = {" ".join(path) for path in EVERY_COMMAND}
    assert {"demo", "setup", "threads", "history", "prune", "store search"} <= names
    for path in EVERY_COMMAND:
        assert "--embedded" in {opt for p in _command(path).params for opt in p.opts}, path


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=" ".join)
def test_embedded_with_dsn_is_a_usage_error(path: tuple[str, ...], tmp_path: Path) -> None:
    result = invoke(
        *path,
        *_arguments(path),
        "--embedded",
        "--dsn",
        "postgresql://nobody:s3cret@127.0.0.1:1/none",
        env={"CHECKPOINT_PG_HOME": str(tmp_path)},
    )
    assert result.exit_code == 2, result.output
    assert "give --dsn or --embedded, not both" in result.stderr
    assert "s3cret" not in result.output
    assert not any(tmp_path.iterdir())  # no server was started


def test_without_a_database_the_error_names_embedded() -> None:
    result = invoke("threads")
    assert result.exit_code == 2
    assert "--embedded" in result.stderr


def test_operator_commands_read_what_setup_wrote_on_the_embedded_server(tmp_path: Path) -> None:
    env = {"CHECKPOINT_PG_HOME": str(tmp_path)}
    ready = invoke("setup", "--embedded", env=env)
    assert ready.exit_code == 0, ready.output
    assert f"embedded server in {tmp_path / 'pg18'}" in ready.output
    # $CHECKPOINT_PG_DSN does not win over an explicit --embedded.
    env["CHECKPOINT_PG_DSN"] = "postgresql://nobody@127.0.0.1:1/none"
    listed = invoke("threads", "--embedded", "--json", env=env)
    assert parsed(listed) == {"threads": [], "next_after": None}
    assert "embedded server in" in listed.stderr  # the JSON on stdout stays clean
