"""How core operations meet a psycopg connection: transactions, prepared statements, errors.

`run` / `arun` (in `sync.py` / `aio.py`) are the only places statements are sent; these are
the rules they share, which need no waiting.

Works with whatever connection the user hands over: its row factory is ignored (cursors get
their own), and a connection that is not in autocommit mode gets a transaction (or, inside
the user's own transaction, a savepoint) around each operation.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, Connection, errors
from psycopg.pq import TransactionStatus

from checkpoint_pg._runtime.errors import (
    ConnectionUnusableError,
    ReadOnlyServerError,
    SchemaNotReadyError,
)
from checkpoint_pg._runtime.protocol import Operation, Query

T = TypeVar("T")


def ensure_usable(conn: Connection[Any] | AsyncConnection[Any]) -> None:
    """Refuse a closed connection or one stuck in a failed transaction, saying which."""
    if conn.closed:
        raise ConnectionUnusableError("the PostgreSQL connection given to the saver is closed")
    if conn.pgconn.transaction_status == TransactionStatus.INERROR:
        raise ConnectionUnusableError(
            "the PostgreSQL connection given to the saver is in a failed transaction: "
            "roll it back before using the saver"
        )


def needs_transaction(conn: Connection[Any] | AsyncConnection[Any], op: Operation[Any]) -> bool:
    return op.transactional or not conn.autocommit


def prepare_flag(conn: Connection[Any] | AsyncConnection[Any], query: Query) -> bool | None:
    """`query.prepare`, except never True on a connection with ``prepare_threshold=None``.

    ``prepare_threshold=None`` is the user's signal that a transaction pooler (PgBouncer,
    Supavisor) sits in between: a statement prepared on one server connection would be missing,
    or another client's, on the next. psycopg honours an explicit ``prepare=True`` even then.
    """
    if conn.prepare_threshold is None:
        return False
    return query.prepare


# What a transaction pooler (PgBouncer, Odyssey, pgcat, Supavisor, RDS Proxy... in transaction
# mode) answers when psycopg's prepared statements (named ``_pg3_0``, ``_pg3_1``... per client
# connection) meet a server connection that another client prepared on, or that never saw them:
# the name is taken (42P05), missing (26000), or names another client's statement with another
# number of parameters (08P01, "bind message supplies 2 parameters, but prepared statement
# "_pg3_4" requires 1"). A direct connection never answers these about psycopg's own names. In
# each case the failed statement was not executed (its Parse or Bind failed) and the server
# aborted the transaction it was in.
_POOLER_ERRORS = (
    errors.DuplicatePreparedStatement,
    errors.InvalidSqlStatementName,
    errors.ProtocolViolation,
)
_PSYCOPG_STATEMENT = re.compile(r'prepared statement "_pg3_\d+"')


def pooler_signature(exc: BaseException) -> bool:
    """Whether `exc` (or the driver error a SQLAlchemy error wraps) is a transaction pooler
    mixing up psycopg's prepared statements (see ``_POOLER_ERRORS``)."""
    orig = getattr(exc, "orig", None)
    if not isinstance(exc, psycopg.Error) and isinstance(orig, psycopg.Error):
        exc = orig
    if not isinstance(exc, _POOLER_ERRORS):
        return False
    return bool(_PSYCOPG_STATEMENT.search(exc.diag.message_primary or ""))


# Errors with a known remedy, turned into this package's typed errors (`schema_not_ready`).
SCHEMA_MISSING = (errors.UndefinedTable, errors.UndefinedColumn, errors.UndefinedFunction)


def schema_not_ready(exc: psycopg.Error) -> SchemaNotReadyError:
    return SchemaNotReadyError(
        f"the schema is missing or older than this version ({exc.diag.message_primary}): "
        "call setup() once before using the saver or store"
    )


def read_only_server(conn: Connection[Any] | AsyncConnection[Any]) -> ReadOnlyServerError:
    """The typed error for a write refused with SQLSTATE 25006 (read_only_sql_transaction),
    naming the server (host, port, database, user; never a password) and, as the server
    reports it (PostgreSQL 14+), whether it is a hot standby."""
    info = conn.info
    shown = {"host": info.host, "port": str(info.port), "dbname": info.dbname, "user": info.user}
    where = " ".join(f"{k}={v}" for k, v in shown.items() if v) or "the connected server"
    if info.parameter_status("in_hot_standby") == "on":
        return ReadOnlyServerError(where, standby=True)
    return ReadOnlyServerError(where, standby=False)
