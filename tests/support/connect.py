"""DSNs that cannot connect, one per way of failing, each carrying a password to watch for.

Every case is a real failure from a real server or from libpq: a port nobody listens on, a
host name that cannot resolve, a database that does not exist, a wrong password (on an
embedded PostgreSQL set up for scram-sha-256, since the test server may trust everyone) and
``sslmode=require`` against a server without SSL.
"""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from checkpoint_pg.errors import ConnectionFailedError
from tests.harness import TestServer

SECRET = "Sup3r-S3cret-pw"
# A scram role on the embedded server, and the password it really has.
PW_ROLE = "cpg_pw_user"
PW_RIGHT = "the-right-one"
# A generous bound: what is checked is "fails at once, not after the pool's 30 s".
BOUND = 10.0


@dataclass(frozen=True)
class BadDsn:
    """A DSN that cannot connect, and words of the reason libpq or the server gives."""

    name: str
    dsn: str
    reason: str

    def __str__(self) -> str:
        return self.name


def free_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def password_server() -> Iterator[str]:
    """DSN (without password) of an embedded server where `PW_ROLE` must give a password."""
    try:
        from checkpoint_pg.cli.embedded import start_ephemeral

        server = start_ephemeral()
    except Exception as exc:  # the 'embedded' extra missing, or the binaries cannot run
        pytest.skip(f"wrong-password case needs the embedded PostgreSQL, which failed: {exc}")
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {PW_ROLE} LOGIN PASSWORD '{PW_RIGHT}'")
            hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
            rules = "".join(
                f"{where} all {PW_ROLE} {address} scram-sha-256\n".replace("  ", " ")
                for where, address in (("local", ""), ("host", "127.0.0.1/32"))
            )
            hba.write_text(rules + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)  # the postmaster rereads pg_hba.conf on SIGHUP
        yield make_conninfo(server.dsn, user=PW_ROLE)
    finally:
        server.stop()


def _server_lacks_ssl(dsn: str) -> bool:
    try:
        psycopg.connect(make_conninfo(dsn, sslmode="require", connect_timeout="5")).close()
    except psycopg.OperationalError as exc:
        return "does not support SSL" in str(exc)
    return False


CASES = ["refused", "unknown_host", "missing_database", "wrong_password", "ssl_required"]


@pytest.fixture(params=CASES)
def bad_dsn(request: pytest.FixtureRequest, pg_server: TestServer) -> BadDsn:
    """Each way a DSN can fail to connect, with `SECRET` as its password."""
    admin = pg_server.admin_dsn
    name = request.param
    if name == "refused":
        dsn = make_conninfo(admin, host="127.0.0.1", port=str(free_port()), password=SECRET)
        return BadDsn(name, dsn, "refused")
    if name == "unknown_host":
        dsn = make_conninfo(admin, host="nohost.invalid", password=SECRET)
        return BadDsn(name, dsn, "nohost.invalid")
    if name == "missing_database":
        dsn = make_conninfo(admin, dbname="cpg_no_such_db", password=SECRET)
        return BadDsn(name, dsn, 'database "cpg_no_such_db" does not exist')
    if name == "wrong_password":
        server: str = request.getfixturevalue("password_server")
        return BadDsn(name, make_conninfo(server, password=SECRET), "password authentication")
    host = conninfo_to_dict(admin).get("host")
    if host and str(host).startswith("/"):
        pytest.skip("the test server is on a Unix socket, where sslmode does not apply")
    if not _server_lacks_ssl(admin):
        pytest.skip("the test server accepts SSL, so sslmode=require connects")
    dsn = make_conninfo(admin, sslmode="require", password=SECRET)
    return BadDsn(name, dsn, "does not support SSL")


def assert_reported(exc: BaseException, bad_dsn: BadDsn, elapsed: float) -> None:
    """The error a bad DSN must give: typed, fast, with the reason, without the password."""
    assert isinstance(exc, ConnectionFailedError)
    assert isinstance(exc, psycopg.OperationalError)
    assert elapsed < BOUND, f"took {elapsed:.1f}s: a wrong DSN must fail at once"
    assert bad_dsn.reason in str(exc)
    assert bad_dsn.reason in exc.reason
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
        assert SECRET not in text
    assert SECRET not in exc.endpoint
