"""The operator commands of `checkpoint-pg`: one small module per group of commands.

`register` adds them to the top-level click group in `checkpoint_pg.cli`. Every command here
needs a real database (``--dsn`` or ``$CHECKPOINT_PG_DSN``), prints a table by default and JSON
with ``--json``, and exits with the codes in `checkpoint_pg.cli.ops.common`. The statements
they run themselves are the named blocks of ``queries.sql`` beside this module, run through
`checkpoint_pg.cli.ops.common.Session.execute`.
"""

from __future__ import annotations

import click

__all__ = ["register"]


def register(group: click.Group) -> None:
    """Add every operator command to `group`."""
    from checkpoint_pg.cli.ops.convert import COMMANDS as convert
    from checkpoint_pg.cli.ops.doctor import COMMANDS as doctor
    from checkpoint_pg.cli.ops.inspect import COMMANDS as inspect
    from checkpoint_pg.cli.ops.maintain import COMMANDS as maintain
    from checkpoint_pg.cli.ops.reencrypt import COMMANDS as reencrypt
    from checkpoint_pg.cli.ops.store_cmds import COMMANDS as store
    from checkpoint_pg.cli.ops.threads import COMMANDS as threads

    for commands in (doctor, threads, inspect, maintain, store, reencrypt, convert):
        for command in commands:
            group.add_command(command)
