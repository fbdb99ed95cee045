"""Database URLs: validation, the Prisma-era parameters, pooler detection and masking.

``postgresql+psycopg://`` and libpq ``postgresql://`` URLs and libpq key=value strings are
accepted and validated up front, with clear messages. Three URL parameters that libpq does not
know are understood, because the platform's Prisma-era URLs carry them: ``pgbouncer=true``
(pooler mode), ``ssl=true|false|<sslmode>`` (alias of ``sslmode``) and ``schema=NAME`` (becomes
the ``search_path``). SSL is libpq's: ``sslmode``, ``sslrootcert``... pass straight through, so
cloud providers that require TLS work with ``?sslmode=require`` (or ``verify-full``). Passwords
never appear in a log line, an error message or a repr: everything that shows a connection
string shows it masked (`checkpoint_pg._runtime.dsn.mask_dsn`, plus libpq's other secret
parameters).

Pooler mode (PgBouncer / Supavisor in transaction mode) is on when the caller says so, when the
URL says ``pgbouncer=true``, or when the port is a known pooler port (6432, 6543; see
`checkpoint_pg._runtime.dsn.pooled_ports`) or the host a known pooler's (``-pooler.`` of Neon,
``pooler.supabase.com``, RDS Proxy). Any other transaction pooler is recognised by its first
error about a prepared statement (`app_data.engine.switch_to_unprepared`), unless the caller
or the URL said ``pooler=False`` / ``pgbouncer=false``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import make_conninfo

from app_data.errors import InvalidDatabaseURLError
from checkpoint_pg._runtime.dsn import InvalidDSNError, is_pooled, mask_dsn, tuned_dsn, validate_dsn

__all__ = ["ConnectionTarget", "mask_url", "parse_database_url"]

# Secrets besides the two `mask_dsn` already hides (password, sslpassword).
_OTHER_SECRETS = ("oauth_client_secret", "scram_client_key", "scram_server_key")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SCHEMES = {"postgresql", "postgres"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_KV_KEYS = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)\s*=")


@functools.cache
def _libpq_keywords() -> frozenset[str]:
    return frozenset(
        d.keyword.decode() for d in psycopg.pq.Conninfo.get_defaults() if d.keyword is not None
    )


@dataclass(frozen=True)
class ConnectionTarget:
    """A validated libpq connection string and whether it goes through a transaction pooler."""

    conninfo: str = field(repr=False)
    pooler: bool
    # Whether a transaction pooler the URL does not reveal may still be recognised by its first
    # error (`app_data.engine.switch_to_unprepared`): not when the caller or the URL said
    # ``pooler=False`` / ``pgbouncer=false``.
    detect: bool = False

    @property
    def masked(self) -> str:
        """The connection string with every secret replaced by ``***``."""
        return _mask_conninfo(self.conninfo)

    @property
    def sslmode(self) -> str | None:
        """The ``sslmode`` the URL asks for (None: libpq's default, ``prefer``)."""
        return validate_dsn(self.conninfo).get("sslmode")

    def __repr__(self) -> str:
        return f"ConnectionTarget({self.masked!r}, pooler={self.pooler})"


def _mask_conninfo(conninfo: str) -> str:
    params = validate_dsn(conninfo)
    extra = {k: "***" for k in _OTHER_SECRETS if k in params}
    return mask_dsn(make_conninfo(conninfo, **extra) if extra else conninfo)


def _bool_param(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InvalidDatabaseURLError(f"URL parameter {name}={value!r} must be true or false")


def _split_url(raw: str) -> tuple[str, dict[str, str]]:
    """Turn a URL into a libpq URL plus the app-level parameters libpq does not know."""
    scheme, _, rest = raw.partition("://")
    scheme = scheme.lower()
    base, plus, driver = scheme.partition("+")
    if base not in _SCHEMES:
        raise InvalidDatabaseURLError(
            f"unsupported URL scheme {scheme!r}: use postgresql+psycopg://, postgresql:// "
            "or a libpq key=value string"
        )
    if plus and driver != "psycopg":
        raise InvalidDatabaseURLError(
            f"driver {driver!r} is not supported: app_data uses psycopg 3 "
            "(postgresql+psycopg://...), the driver of the checkpoint savers"
        )
    try:
        parts = urlsplit("postgresql://" + rest)
    except ValueError:  # e.g. an unbalanced IPv6 bracket; the message could quote the URL
        raise InvalidDatabaseURLError("the database URL is not a valid URL") from None
    query: list[tuple[str, str]] = []
    app: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("pgbouncer", "ssl", "schema"):
            app[key] = value
        elif key not in _libpq_keywords():
            raise InvalidDatabaseURLError(
                f"unknown connection parameter {key!r} in the URL's query string"
            )
        else:
            query.append((key, value))
    url = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
    return url, app


def parse_database_url(raw: str, *, pooler: bool | None = None) -> ConnectionTarget:
    """Validate `raw` and return the libpq connection string app_data connects with.

    Args:
        raw: ``postgresql+psycopg://``/``postgresql://`` URL or libpq key=value string.
        pooler: force pooler mode on or off; None detects it (``pgbouncer=true``, pooler port).

    Raises:
        InvalidDatabaseURLError: with a message saying what is wrong (never the password).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidDatabaseURLError(
            "the database URL is empty: set APP_DATA_DATABASE_URL (or CHECKPOINT_PG_DSN)"
        )
    raw = raw.strip()
    app: dict[str, str] = {}
    if "://" in raw:
        raw, app = _split_url(raw)
    params = _libpq_params(raw)
    if "ssl" in app:
        _apply_ssl(params, app["ssl"])
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in _SSLMODES:
        raise InvalidDatabaseURLError(f"sslmode {sslmode!r} is not one of {', '.join(_SSLMODES)}")
    if "schema" in app:
        _apply_schema(params, app["schema"])
    for port in params.get("port", "").split(","):
        if port and not port.strip().isdigit():
            raise InvalidDatabaseURLError(f"port {port!r} is not a number")

    conninfo = tuned_dsn(make_conninfo("", **params))
    detected = pooler is None
    if pooler is None:
        pooler = _detect_pooler(conninfo, app)
    detect = detected and not pooler and "pgbouncer" not in app
    # Only when the URL itself says pooler: callers pass pooler=True also to get a one-shot
    # engine (no client pool, no prepared statements), as the migrations do.
    if pooler and "options" in params and detected:
        # PgBouncer refuses the startup parameter, or (ignore_startup_parameters) drops it:
        # the tables would then be looked for in the role's default search_path.
        raise InvalidDatabaseURLError(
            "schema=/options= cannot reach the server through a transaction pooler (PgBouncer "
            "refuses or drops startup options): set the schema on the role instead "
            "(ALTER ROLE … SET search_path = …) or connect without the pooler"
        )
    return ConnectionTarget(conninfo=conninfo, pooler=pooler, detect=detect)


def _libpq_params(raw: str) -> dict[str, str]:
    """The parameters of a libpq connection string (or URL), or a message saying what is wrong."""
    try:
        return validate_dsn(raw)
    except InvalidDSNError:
        unknown = sorted(set(_KV_KEYS.findall(raw)) - _libpq_keywords()) if "://" not in raw else []
        if unknown:
            raise InvalidDatabaseURLError(
                f"unknown connection parameter(s) {', '.join(unknown)}"
            ) from None
        raise InvalidDatabaseURLError(
            "the database URL is not a valid postgresql:// URL or libpq key=value string"
        ) from None


def _apply_ssl(params: dict[str, str], value: str) -> None:
    """Turn Prisma's ``ssl=`` into libpq's ``sslmode``, refusing a contradiction."""
    ssl = value.strip().lower()
    mode = ssl if ssl in _SSLMODES else ("require" if _bool_param("ssl", ssl) else "disable")
    if params.get("sslmode", mode) != mode:
        raise InvalidDatabaseURLError(f"ssl={value!r} contradicts sslmode={params['sslmode']!r}")
    params["sslmode"] = mode


def _apply_schema(params: dict[str, str], schema: str) -> None:
    """Turn Prisma's ``schema=`` into a ``search_path`` startup option."""
    if not _SCHEMA_NAME.match(schema):
        raise InvalidDatabaseURLError(f"schema={schema!r} is not a plain schema name")
    options = params.get("options", "")
    params["options"] = f"{options} -c search_path={schema}".strip()


def _detect_pooler(conninfo: str, app: dict[str, str]) -> bool:
    """Whether the URL says ``pgbouncer=true`` or its port is a known pooler port."""
    hinted = _bool_param("pgbouncer", app["pgbouncer"]) if "pgbouncer" in app else False
    try:
        return hinted or is_pooled(conninfo)
    except InvalidDSNError as exc:
        raise InvalidDatabaseURLError(str(exc)) from None


def mask_url(raw: str) -> str:
    """`raw` with every secret masked, or a placeholder when it cannot be parsed."""
    try:
        return parse_database_url(raw).masked
    except InvalidDatabaseURLError:
        return "<invalid URL>"
