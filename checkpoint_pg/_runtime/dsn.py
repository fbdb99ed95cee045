"""DSN handling shared by the savers, the CLI, the demo and the test harness.

Why a module of its own: a DSN carries a password, and every place that prints,
logs or raises about a connection must go through `mask_dsn` so that it never
leaks. Parsing is psycopg's (`conninfo_to_dict`), so URLs and key=value strings
are both accepted exactly as libpq accepts them.
"""

from __future__ import annotations

import os
import re

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from checkpoint_pg._runtime.errors import InvalidDSNError

__all__ = [
    "DSN_ENV_VAR",
    "InvalidDSNError",
    "mask_dsn",
    "validate_dsn",
    "with_dbname",
]

DSN_ENV_VAR = "CHECKPOINT_PG_DSN"
_SECRET_KEYS = frozenset({"password", "sslpassword"})
_MASK = "***"


def validate_dsn(dsn: str) -> dict[str, str]:
    """Parse `dsn` like libpq does and return its parameters.

    Raises:
        InvalidDSNError: if libpq rejects it (the message is secret-free).
    """
    if not isinstance(dsn, str) or not dsn.strip():
        raise InvalidDSNError("the PostgreSQL DSN is empty")
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        # libpq's message may quote the string it could not parse, secret included.
        raise InvalidDSNError(
            "the PostgreSQL DSN is not a valid libpq URL or key=value string"
        ) from _scrubbed(exc)
    return {k: str(v) for k, v in params.items() if v is not None}


def _scrubbed(exc: Exception) -> Exception:
    return type(exc)("(details hidden: they may contain a password)")


def mask_dsn(dsn: str) -> str:
    """Return `dsn` as key=value text with every secret replaced by ``***``."""
    try:
        params = validate_dsn(dsn)
    except InvalidDSNError:
        return "<unparseable DSN>"
    masked = {k: (_MASK if k in _SECRET_KEYS else v) for k, v in params.items()}
    return make_conninfo("", **masked)


def with_dbname(dsn: str, dbname: str) -> str:
    """Return `dsn` pointing at database `dbname`, all other parameters kept."""
    validate_dsn(dsn)
    return make_conninfo(dsn, dbname=dbname)


# A dead peer is detected in seconds, not after the kernel's two hours (TCP only; a Unix
# socket needs none of this). Values in the DSN itself win. What finds what (Linux):
# - a peer that vanished while the connection idles or waits for a long query's answer:
#   keepalive probes from 10 s of silence, every 3 s; with tcp_user_timeout set, the kernel
#   drops the connection once 15 s passed without hearing back and a probe went unanswered
#   (~16 s; without tcp_user_timeout, after 3 unanswered probes: ~19 s);
# - a peer that stops acknowledging data we sent (a statement in flight): tcp_user_timeout,
#   15 s, instead of ~15 minutes of retransmissions;
# - a server that does not answer at connect time: connect_timeout, 5 s (a wrong address must
#   fail in seconds: see `checkpoint_pg._runtime.connect`).
# The lost connection then surfaces as an OperationalError, which the shells retry.
CONNECT_TIMEOUT = {"connect_timeout": "5"}
_CONNECT_DEFAULTS = {
    **CONNECT_TIMEOUT,
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}


def tuned_dsn(dsn: str) -> str:
    """`dsn` with this package's connect-timeout and keepalive defaults where it sets none."""
    params = validate_dsn(dsn)
    extra = {k: v for k, v in _CONNECT_DEFAULTS.items() if k not in params}
    return make_conninfo(dsn, **extra) if extra else dsn


def connection_kwargs(*, pooler: bool = False) -> dict[str, object]:
    """Keyword arguments for psycopg connections made by this package.

    Args:
        pooler: True behind PgBouncer/Supavisor in transaction mode, where a prepared
            statement may land on another server connection: prepared statements are off.
    """
    return {
        "autocommit": True,
        "prepare_threshold": None if pooler else 5,
        # As the official package's: rows of `.conn.execute(...)` are dicts (the savers and
        # stores read through cursors of their own, whatever the connection's row factory).
        "row_factory": dict_row,
    }


POOLED_PORTS_ENV_VAR = "CHECKPOINT_PG_POOLED_PORTS"
# PgBouncer's customary port and Supavisor's transaction-mode port.
DEFAULT_POOLED_PORTS = frozenset({6432, 6543})


def pooled_ports() -> frozenset[int]:
    """Ports the user marks as transaction poolers (``$CHECKPOINT_PG_POOLED_PORTS``)."""
    raw = os.environ.get(POOLED_PORTS_ENV_VAR)
    if raw is None:
        return DEFAULT_POOLED_PORTS
    try:
        return frozenset(int(p) for p in raw.replace(" ", "").split(",") if p)
    except ValueError:
        raise InvalidDSNError(
            f"${POOLED_PORTS_ENV_VAR} must be a comma-separated list of port numbers"
        ) from None


# Host names only transaction poolers have: Neon's pooled endpoints (``ep-x-123-pooler.us-east-2
# .aws.neon.tech``, port 5432), Supabase's Supavisor (``aws-0-eu-west-1.pooler.supabase.com``) and
# RDS Proxy (``name.proxy-abc123.eu-west-1.rds.amazonaws.com``). Any other pooler, on any port, is
# recognised by its first error instead (`checkpoint_pg._runtime.shell.switch_to_unprepared`).
_POOLER_HOSTS = re.compile(
    r"-pooler\.|\.pooler\.supabase\.com$|\.proxy-[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com$",
    re.IGNORECASE,
)


def is_pooled(dsn: str) -> bool:
    """Whether `dsn` points at a port marked as a transaction pooler, or at a pooler's host
    name (`_POOLER_HOSTS`)."""
    params = validate_dsn(dsn)
    ports = {int(p) for p in params.get("port", "").split(",") if p.strip().isdigit()}
    hosts = [h.strip().rstrip(".") for h in params.get("host", "").split(",")]
    return bool(ports & pooled_ports()) or any(_POOLER_HOSTS.search(h) for h in hosts if h)


def resolve_pooler(dsn: str, pooler: bool | None) -> bool:
    """An explicit choice wins; None means: pooled if the DSN's port or host is a pooler's."""
    return is_pooled(dsn) if pooler is None else pooler


def pooler_state(dsn: str, pooler: bool | None) -> bool | None:
    """What a pool made for `dsn` starts as: True (no prepared statements), False (the caller
    said ``pooler=False``: never switch), or None (prepared statements, until a transaction
    pooler shows itself by its errors: see `checkpoint_pg._runtime.shell.switch_to_unprepared`).
    """
    if pooler is not None:
        return pooler
    return True if is_pooled(dsn) else None
