"""Which PostgreSQL a command talks to: ``--dsn`` (or ``$CHECKPOINT_PG_DSN``) or ``--embedded``.

``--embedded`` is the server the demo runs on (`checkpoint_pg.cli.embedded`: data in
``$CHECKPOINT_PG_HOME/pg18``, by default ``~/.local/share/checkpoint-pg/pg18``), started for the
command's duration, so what the demo wrote can be looked at afterwards. ``--embedded`` with an
explicit ``--dsn`` is a usage error (exit 2); ``--embedded`` wins over ``$CHECKPOINT_PG_DSN``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from click.core import ParameterSource

__all__ = ["MissingExtra", "embedded_option", "embedded_server", "wanted_dsn"]

EMBEDDED_HELP = (
    "Use the demo's embedded PostgreSQL (data in $CHECKPOINT_PG_HOME/pg18, "
    "default ~/.local/share/checkpoint-pg/pg18) instead of --dsn."
)

embedded_option = click.option("--embedded", is_flag=True, help=EMBEDDED_HELP)


class MissingExtra(click.ClickException):
    """An optional part is not installed: one line naming the ``pip install``, exit code 2."""

    exit_code = 2


def wanted_dsn(dsn: str | None, embedded: bool) -> str | None:
    """The DSN the command was given, or None when it asked for the embedded server.

    Raises:
        click.UsageError: ``--embedded`` together with ``--dsn`` on the command line.
    """
    if not embedded:
        return dsn
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source("dsn") if ctx is not None else None
    if dsn is not None and source is not ParameterSource.ENVIRONMENT:
        raise click.UsageError("give --dsn or --embedded, not both")
    return None


@contextmanager
def embedded_server(say: Callable[[str], None]) -> Iterator[str]:
    """The embedded server's DSN, the server running for the block's duration.

    Raises:
        MissingExtra: the ``embedded`` extra is not installed (exit 2).
        click.ClickException: the server did not start (exit 1).
    """
    from checkpoint_pg._runtime.extras import require
    from checkpoint_pg.cli.embedded import EmbeddedPostgresUnavailableError, start_embedded
    from checkpoint_pg.errors import MissingExtraError

    try:
        require("--embedded (the embedded PostgreSQL)", "embedded")
    except MissingExtraError as exc:
        raise MissingExtra(str(exc)) from None
    try:
        server = start_embedded()
    except EmbeddedPostgresUnavailableError as exc:
        raise click.ClickException(str(exc)) from None
    say(f"PostgreSQL: embedded server in {server.data_dir}")
    try:
        yield server.dsn
    finally:
        server.stop()
