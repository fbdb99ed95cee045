"""What every operator command shares: options, the database session, exit codes, errors.

An operator command is written as ``fn(session, **its_params)`` and wrapped by
`operator_command`, which adds ``--dsn``, ``--embedded`` (see `target`), ``--schema`` and
``--json``, refuses to run without a DSN (usage error), opens one autocommit connection, and
turns every failure into a one-line message with the right exit code: no traceback, never a
password.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click
import psycopg
from psycopg import sql

from checkpoint_pg._runtime.connect import connect_reason, endpoint, scrub
from checkpoint_pg._runtime.dsn import (
    DSN_ENV_VAR,
    InvalidDSNError,
    tuned_dsn,
    validate_dsn,
)
from checkpoint_pg._runtime.sqlfile import SqlFile, Statement, load
from checkpoint_pg.cli.ops.target import embedded_option, embedded_server, wanted_dsn

if TYPE_CHECKING:
    from checkpoint_pg.sync import PostgresSaver
    from store.sync import PostgresStore

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PROBLEM",
    "EXIT_USAGE",
    "TABLES",
    "ConfirmationRequiredError",
    "NotFoundError",
    "OperationFailedError",
    "Session",
    "confirm_destructive",
    "connect",
    "endpoint",
    "operator_command",
    "parse_duration",
    "queries",
    "translated_errors",
]

EXIT_OK = 0
EXIT_PROBLEM = 1  # doctor found a problem, or the operation failed
EXIT_USAGE = 2  # click's own code for a usage error
EXIT_NOT_FOUND = 3  # no such thread, checkpoint or store item

EXIT_CODES_HELP = """\b
Operator commands need --dsn, $CHECKPOINT_PG_DSN or --embedded (the demo's
server); add --json for machine-readable output.
\b
Exit codes:
  0  success
  1  problem found (doctor) or operation failed (cannot connect, tables missing, ...)
  2  usage error (bad option or argument, no DSN given, --dsn with --embedded,
     an ambiguous checkpoint id prefix, a destructive command without --yes
     and without a terminal to confirm it)
  3  not found (no such thread, checkpoint or store item)
"""

DEBUG_ENV_VAR = "CHECKPOINT_PG_DEBUG"


class OperationFailedError(click.ClickException):
    """The operation could not be done (exit code 1)."""

    exit_code = EXIT_PROBLEM


class NotFoundError(click.ClickException):
    """What the command names does not exist (exit code 3)."""

    exit_code = EXIT_NOT_FOUND


class ConfirmationRequiredError(click.ClickException):
    """A destructive command got neither --yes nor a terminal to ask on (exit code 2)."""

    exit_code = EXIT_USAGE


def confirm_destructive(question: str, yes: bool) -> None:
    """Ask `question` on the terminal unless `yes`; abort on anything but yes.

    Without a terminal on stdin (a pipe, a file, cron) nothing is asked and nothing read: a
    ``y`` that happens to be in a pipe is not a person's consent. The command stops with a
    usage error saying to pass --yes.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfirmationRequiredError(
            "stdin is not a terminal, so this destructive command cannot ask for confirmation: "
            "pass --yes to run it"
        )
    click.confirm(question, abort=True, err=True)


# -- the database ----------------------------------------------------------------------------

# The table parts of queries.sql: part name -> table name.
TABLES: Mapping[str, str] = {
    "checkpoints": "checkpoints",
    "blobs": "checkpoint_blobs",
    "writes": "checkpoint_writes",
    "store": "store",
    "vectors": "store_vectors",
}


def queries() -> SqlFile:
    """The statements the operator commands run (`queries.sql` beside this module)."""
    return load("checkpoint_pg.cli.ops", "queries.sql")


def connect(dsn: str) -> psycopg.Connection[Any]:
    """One autocommit connection, without prepared statements (safe behind any pooler).

    Raises:
        OperationFailedError: "cannot connect to host=… port=… user=…: <libpq's reason>".
    """
    try:
        return psycopg.connect(tuned_dsn(dsn), autocommit=True, prepare_threshold=None)
    except psycopg.Error as exc:
        raise OperationFailedError(
            f"cannot connect to {endpoint(dsn)}: {connect_reason(exc, dsn)}"
        ) from None


def _serde() -> Any:
    """A serializer that reads what every configuration of this package writes.

    `CompressingSerializer` reads compressed and plain values alike; with
    ``$LANGGRAPH_AES_KEY`` set, encrypted values are decrypted too (LangGraph's convention).
    """
    from checkpoint_pg.serde import CompressingSerializer

    serde: Any = CompressingSerializer()
    if os.environ.get("LANGGRAPH_AES_KEY"):
        from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

        serde = EncryptedSerializer.from_pycryptodome_aes(serde=serde)
    return serde


def _encryption() -> Any:
    """The `RowBoundEncryption` keyring of ``$CHECKPOINT_PG_KEYS`` when it is set, so that the
    commands read (and `copy` writes) sealed rows; None otherwise."""
    from checkpoint_pg._runtime.aead import KEYS_ENV_VAR, RowBoundEncryption
    from checkpoint_pg._runtime.errors import InvalidKeyringError

    if not os.environ.get(KEYS_ENV_VAR):
        return None
    try:
        return RowBoundEncryption.from_env()
    except InvalidKeyringError as exc:  # no key in its message
        raise click.UsageError(str(exc)) from None


@dataclass
class Session:
    """One command's view of the database: a lazily opened connection, a saver, a store."""

    dsn: str
    schema: str | None
    json: bool
    _conn: psycopg.Connection[Any] | None = field(default=None, repr=False)

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            self._conn = connect(self.dsn)
        return self._conn

    def saver(self) -> PostgresSaver:
        from checkpoint_pg.sync import PostgresSaver

        encryption = _encryption()
        # Delta storage reads both formats; it does not combine with row-bound encryption.
        return PostgresSaver(
            self.conn,
            serde=_serde(),
            schema=self.schema,
            encryption=encryption,
            storage="official" if encryption is not None else "delta",
        )

    def store(self) -> PostgresStore:
        from store.sync import PostgresStore

        return PostgresStore(self.conn, schema=self.schema, encryption=_encryption())

    def identifier(self, table: str) -> sql.Identifier:
        """Table `table` as an identifier, qualified with --schema when one is given."""
        return sql.Identifier(self.schema, table) if self.schema else sql.Identifier(table)

    def qualified(self, table: str) -> str:
        """Table `table` as text (quoted, qualified with --schema when one is given): the
        value of a parameter such as ``to_regclass(%(table)s)``, never a piece of SQL."""
        return self.identifier(table).as_string(None)

    def run(
        self,
        statement: Statement,
        params: Mapping[str, Any] | None = None,
        **parts: sql.Composable,
    ) -> psycopg.Cursor[Any]:
        """Run `statement` with `params`: its table parts are this session's tables
        (`TABLES`), `parts` gives the others."""
        tables = {part: self.identifier(table) for part, table in TABLES.items()}
        return self.conn.execute(statement.compose(**{**tables, **parts}), params)

    def execute(
        self, name: str, params: Mapping[str, Any] | None = None, **parts: sql.Composable
    ) -> psycopg.Cursor[Any]:
        """Run statement `name` of `queries.sql` (see `run`)."""
        return self.run(queries()[name], params, **parts)

    def fetchone(
        self, name: str, params: Mapping[str, Any] | None = None, **parts: sql.Composable
    ) -> tuple[Any, ...]:
        """The one row of statement `name` (a count, an EXISTS, an aggregate)."""
        row = self.execute(name, params, **parts).fetchone()
        assert row is not None, f"{name} returned no row"
        return tuple(row)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- errors ------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def translated_errors(dsn: str | None) -> Iterator[None]:
    """Turn any failure into a one-line `ClickException` whose message holds no secret.

    With ``$CHECKPOINT_PG_DEBUG`` set, unexpected exceptions keep their traceback.
    """
    from checkpoint_pg.errors import CheckpointPgError, ConnectionFailedError, SchemaNotReadyError

    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except ConnectionFailedError as exc:
        raise OperationFailedError(scrub(str(exc), dsn)) from None
    except SchemaNotReadyError:
        raise OperationFailedError(
            "the checkpoint tables do not exist here: run `checkpoint-pg setup` first"
        ) from None
    except psycopg.errors.UndefinedTable as exc:
        raise OperationFailedError(
            f"{scrub(_first_line(exc), dsn)}: run `checkpoint-pg setup` first"
        ) from None
    except psycopg.OperationalError as exc:
        raise OperationFailedError(
            f"database error on {endpoint(dsn) if dsn else 'the server'}: "
            f"{scrub(_first_line(exc), dsn)}"
        ) from None
    except (psycopg.Error, CheckpointPgError, ValueError) as exc:
        raise OperationFailedError(scrub(_first_line(exc), dsn)) from None
    except Exception as exc:
        if os.environ.get(DEBUG_ENV_VAR):
            raise
        raise OperationFailedError(
            f"unexpected {type(exc).__name__}: {scrub(_first_line(exc), dsn)} "
            f"(set ${DEBUG_ENV_VAR}=1 for the traceback)"
        ) from None


def checked_dsn(dsn: str | None) -> str:
    """The DSN to use, or a usage error (exit code 2) saying how to give one."""
    if not dsn or not dsn.strip():
        raise click.UsageError(
            f"this command needs a database: pass --dsn, set ${DSN_ENV_VAR}, "
            "or pass --embedded for the demo's embedded server"
        )
    try:
        validate_dsn(dsn)
    except InvalidDSNError as exc:
        raise click.BadParameter(str(exc), param_hint="--dsn") from None
    return dsn


# -- the decorator -----------------------------------------------------------------------------

dsn_option = click.option(
    "--dsn",
    envvar=DSN_ENV_VAR,
    default=None,
    metavar="DSN",
    help=f"PostgreSQL URL or key=value DSN (or ${DSN_ENV_VAR}).",
)
schema_option = click.option(
    "--schema",
    default=None,
    metavar="NAME",
    help="PostgreSQL schema holding the tables (default: the search_path).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of tables."
)


def operator_command(
    name: str | None = None, **command_kwargs: Any
) -> Callable[[Callable[..., Any]], click.Command]:
    """Make ``fn(session, **params)`` a click command with --dsn, --schema and --json."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @functools.wraps(fn)
        def callback(
            dsn: str | None, embedded: bool, schema: str | None, as_json: bool, **params: Any
        ) -> Any:
            dsn = wanted_dsn(dsn, embedded)
            if not embedded:
                return run(checked_dsn(dsn), schema, as_json, params)
            with embedded_server(lambda line: click.echo(line, err=True)) as url:
                return run(url, schema, as_json, params)

        def run(dsn: str, schema: str | None, as_json: bool, params: dict[str, Any]) -> Any:
            session = Session(dsn, schema, as_json)
            try:
                with translated_errors(session.dsn):
                    return fn(session, **params)
            finally:
                session.close()

        wrapped: Any = callback
        for option in (json_option, schema_option, embedded_option, dsn_option):
            wrapped = option(wrapped)
        make: Callable[[Callable[..., Any]], click.Command] = click.command(name, **command_kwargs)
        return make(wrapped)

    return decorate


# -- option values -----------------------------------------------------------------------------

_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def json_object_option(text: str | None, hint: str = "--filter") -> dict[str, Any] | None:
    """An option holding a JSON object (a metadata or value filter), or a usage error."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint=hint) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=hint)
    return value


def parse_duration(text: str) -> timedelta:
    """``"7d"``, ``"12h"``, ``"1d12h"``, ``"90m"``, ``"2w"``, ``"30s"`` as a timedelta.

    Raises:
        click.BadParameter: for anything else, or a duration of zero.
    """
    compact = text.strip().lower().replace(" ", "")
    pieces = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in pieces) != compact:
        raise click.BadParameter(
            f"{text!r} is not a duration: use a number and a unit (w, d, h, m, s), e.g. 7d or 1d12h"
        )
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in pieces)
    if seconds <= 0:
        raise click.BadParameter(f"{text!r}: the duration must be positive")
    return timedelta(seconds=seconds)


class DurationType(click.ParamType):  # type: ignore[type-arg]
    """A click type for `parse_duration`."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


DURATION = DurationType()
