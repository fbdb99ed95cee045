"""Opening a connection, and saying why it could not be opened.

Why a module of its own: a pool that cannot connect only times out (after 30 s, its reason
left in log lines), so every entry point probes with one direct connection first, or when a
pool times out, and raises `ConnectionFailedError` carrying libpq's own reason instead. The
messages go through `scrub`: a DSN's password never reaches an exception or a log line.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from checkpoint_pg._runtime.dsn import (
    CONNECT_TIMEOUT,
    InvalidDSNError,
    mask_dsn,
    validate_dsn,
)
from checkpoint_pg._runtime.errors import ConnectionFailedError

__all__ = [
    "connect_reason",
    "endpoint",
    "failure",
    "pool_target",
    "reconnect_failure",
    "scrub",
    "split_options",
]


def endpoint(dsn: str) -> str:
    """Where `dsn` points, for messages: host, port, database and user, never a secret."""
    try:
        params = validate_dsn(dsn)
    except InvalidDSNError:
        return "<unparseable DSN>"
    shown = {k: params[k] for k in ("host", "port", "dbname", "user") if params.get(k)}
    if "host" not in shown and "hostaddr" in params:
        shown = {"hostaddr": params["hostaddr"], **shown}
    return make_conninfo("", **shown) if shown else "the default local server"


def scrub(message: str, dsn: str | None) -> str:
    """`message` with the DSN's password (and the DSN itself) masked."""
    if not dsn:
        return message
    message = message.replace(dsn, mask_dsn(dsn))
    try:
        params = validate_dsn(dsn)
    except InvalidDSNError:
        return message
    for key in ("password", "sslpassword"):
        secret = params.get(key)
        if secret:
            message = message.replace(secret, "***")
    return message


def connect_reason(exc: BaseException, dsn: str) -> str:
    """libpq's reason for a failed connection, first line only, without its preamble."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = text.rsplit(" failed: ", 1)[-1].strip()
    reason = re.sub(r"^(FATAL|ERROR):\s*", "", reason)
    reason = reason.removeprefix("connection failed: ").removeprefix("connection is bad: ")
    if reason[:1].isupper() and reason[1:2].islower():
        reason = reason[0].lower() + reason[1:]
    return scrub(reason, dsn)


def reconnect_failure(exc: BaseException, dsn: str) -> str:
    """The message of a failed attempt to replace a lost connection to `dsn`: where and why,
    never a secret (a transient fault, unlike `failure`: the server may be restarting)."""
    return f"cannot reconnect to {endpoint(dsn)}: {connect_reason(exc, dsn)}"


def failure(exc: BaseException, dsn: str) -> ConnectionFailedError:
    """The `ConnectionFailedError` for `exc`, raised while connecting to `dsn`."""
    return ConnectionFailedError(endpoint(dsn), connect_reason(exc, dsn))


@functools.cache
def _libpq_keywords() -> frozenset[str]:
    defaults = psycopg.pq.Conninfo.get_defaults()
    return frozenset(d.keyword.decode() for d in defaults if d.keyword is not None)


def split_options(dsn: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The full DSN (libpq parameters passed as keywords merged in, connect_timeout added
    where none is set: the DSN's own value wins) and the remaining connect options."""
    params = {k: v for k, v in kwargs.items() if k in _libpq_keywords()}
    options = {k: v for k, v in kwargs.items() if k not in params}
    if "connect_timeout" not in params and "connect_timeout" not in validate_dsn(dsn):
        params.update(CONNECT_TIMEOUT)
    return (make_conninfo(dsn, **params) if params else dsn), options


def pool_target(pool: Any) -> tuple[str, dict[str, Any]] | None:
    """A pool's DSN and connection options, when they are plain values (not callables)."""
    conninfo, kwargs = pool.conninfo, pool.kwargs or {}
    if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
        return None
    return conninfo, kwargs
