"""Find a PostgreSQL server for tests and benchmarks, and hand out isolated databases on it.

Order of preference (first that works wins):
1. the DSN in ``$CHECKPOINT_PG_TEST_DSN``;
2. the Citus coordinator in ``$CHECKPOINT_PG_TEST_CITUS_DSN`` (tests/support/citus.py): tests
   get schemas in its database, never databases of their own;
3. a testcontainers PostgreSQL, when a Docker daemon answers (probed in well under a second);
4. an ephemeral embedded PostgreSQL 18 with pgvector.

Isolation: a template database is built once per session. Tests that need a whole database
get ``CREATE DATABASE … TEMPLATE`` (~40 ms on the embedded server, but ~100-170 ms on a server
that fsyncs, as this machine's PostgreSQL 15 does); everyday tests get a schema of their own in
one database cloned from the template (~1 ms), reached through a DSN whose ``search_path``
starts with it, so unqualified names in any code under test land there.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from checkpoint_pg._runtime.dsn import mask_dsn, validate_dsn, with_dbname

__all__ = [
    "CITUS_DSN_ENV_VAR",
    "TEST_DSN_ENV_VAR",
    "DatabaseFactory",
    "PgBouncer",
    "TestServer",
    "docker_available",
    "pgbouncer_binary",
    "provision_server",
    "start_pgbouncer",
]

TEST_DSN_ENV_VAR = "CHECKPOINT_PG_TEST_DSN"
ServerSource = Literal["env", "citus", "testcontainers", "embedded"]
CITUS_DSN_ENV_VAR = "CHECKPOINT_PG_TEST_CITUS_DSN"


@dataclass
class TestServer:
    """A PostgreSQL server the caller may create and drop databases on."""

    __test__ = False  # not a pytest test class

    admin_dsn: str
    source: ServerSource
    version: int = 0
    _close: Callable[[], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            self.version = conn.info.server_version

    @property
    def major_version(self) -> int:
        return self.version // 10000

    def has_extension(self, name: str) -> bool:
        """Whether extension `name` can be installed on this server."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = %s", (name,)
            ).fetchone()
        return row is not None

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __repr__(self) -> str:  # never show a password
        return f"TestServer(source={self.source!r}, dsn={mask_dsn(self.admin_dsn)!r})"


def docker_available(timeout: float = 0.3) -> bool:
    """Whether a Docker daemon answers a ping on its socket, within `timeout` seconds."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            if not Path(path).exists():
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        elif host.startswith("tcp://"):
            hostport = host.removeprefix("tcp://").rstrip("/")
            name, _, port = hostport.rpartition(":")
            sock = socket.create_connection((name, int(port)), timeout=timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b"200 OK" in sock.recv(256)
    except OSError:
        return False


def _testcontainers_server() -> TestServer:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("pgvector/pgvector:pg17", driver=None)
    container.start()
    dsn = container.get_connection_url()
    return TestServer(admin_dsn=dsn, source="testcontainers", _close=container.stop)


def _embedded_server() -> TestServer:
    from checkpoint_pg.cli.embedded import start_ephemeral

    server = start_ephemeral()
    return TestServer(admin_dsn=server.dsn, source="embedded", _close=server.stop)


def provision_server() -> TestServer:
    """Return a server in the documented order of preference."""
    dsn = os.environ.get(TEST_DSN_ENV_VAR)
    if dsn:
        return TestServer(admin_dsn=dsn, source="env")
    citus = os.environ.get(CITUS_DSN_ENV_VAR, "").strip()
    if citus:
        return TestServer(admin_dsn=citus, source="citus")
    if docker_available():
        return _testcontainers_server()
    return _embedded_server()


class DatabaseFactory:
    """Creates isolated databases on a server, cloned from one template built once."""

    def __init__(self, server: TestServer, *, prefix: str = "cpg") -> None:
        self.server = server
        run = uuid.uuid4().hex[:8]
        self._prefix = f"{prefix}_{os.getpid()}_{run}"
        self.template = f"{self._prefix}_tmpl"
        self._counter = itertools.count()
        self._template_built = False
        self._work_dsn: str | None = None
        self._work_conn: psycopg.Connection[Any] | None = None

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.admin_dsn, autocommit=True)

    @property
    def shares_database(self) -> bool:
        """Whether tests share the server's own database (Citus: metadata is per database)."""
        return self.server.source == "citus"

    def build_template(self, prepare: Callable[[str], None] | None = None) -> None:
        """Create the template database and run `prepare(dsn)` on it once."""
        if self.shares_database:
            if prepare is not None:
                prepare(self.server.admin_dsn)
            return
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        if prepare is not None:
            prepare(with_dbname(self.server.admin_dsn, self.template))
        self._template_built = True

    def create(self) -> str:
        """Create a fresh database from the template and return its DSN."""
        if not self._template_built:
            self.build_template()
        name = f"{self._prefix}_{next(self._counter)}"
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        return with_dbname(self.server.admin_dsn, name)

    def drop(self, dsn: str) -> None:
        """Drop the database `dsn` points at, disconnecting whoever is still on it."""
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
            )

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database for the duration of the block."""
        if self.shares_database:
            import pytest

            pytest.skip("a database per test is not available on a Citus cluster (schemas are)")
        dsn = self.create()
        try:
            yield dsn
        finally:
            self.drop(dsn)

    def _work(self) -> psycopg.Connection[Any]:
        if self._work_conn is None or self._work_conn.closed:
            if self._work_dsn is None:
                shared = self.server.admin_dsn if self.shares_database else None
                self._work_dsn = shared or self.create()
            self._work_conn = psycopg.connect(self._work_dsn, autocommit=True)
        return self._work_conn

    def create_schema(self) -> str:
        """Create an empty schema in the shared work database; return a DSN that uses it.

        The DSN sets ``search_path`` to the schema (then ``public``, for extensions) and an
        ``application_name`` naming it, so `drop_schema` can end the test's connections.
        """
        conn = self._work()
        # On a shared database (Citus), names carry the run's prefix: runs never collide.
        name = (
            f"{self._prefix}_t{next(self._counter)}"
            if self.shares_database
            else f"t{next(self._counter)}"
        )
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        assert self._work_dsn is not None
        options = validate_dsn(self._work_dsn).get("options", "")
        return make_conninfo(
            self._work_dsn,
            options=f"{options} -c search_path={name},public".strip(),
            application_name=f"{self._prefix}:{name}",
        )

    def drop_schema(self, dsn: str) -> None:
        """Drop the schema `dsn` uses, ending connections still open on it first."""
        params = validate_dsn(dsn)
        name = params["options"].rsplit("search_path=", 1)[1].split(",", 1)[0]
        conn = self._work()
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (params["application_name"],),
        )
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))

    @contextmanager
    def schema(self) -> Iterator[str]:
        """A fresh schema (with its own DSN) for the duration of the block."""
        dsn = self.create_schema()
        try:
            yield dsn
        finally:
            self.drop_schema(dsn)

    def close(self) -> None:
        """Drop the work database and the template."""
        if self._work_conn is not None:
            self._work_conn.close()
        if self._work_dsn is not None and not self.shares_database:
            self.drop(self._work_dsn)
        self._work_dsn = None
        if self._template_built:
            with self._admin() as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.template)
                    )
                )
            self._template_built = False


# -- PgBouncer in transaction mode in front of a test server --------------------------------------

PGBOUNCER_SKIP_REASON = (
    "the pgbouncer binary is not installed (Debian: apt-get install -y pgbouncer; "
    ".ci/run installs it): the connection-pooler tests need it"
)


def pgbouncer_binary() -> str | None:
    """Path of the ``pgbouncer`` executable (also looked for in /usr/sbin), or None."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    for candidate in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as(upstream_host: str) -> tuple[int, int] | None:
    """The (uid, gid) PgBouncer runs as: it refuses to run as root.

    Not root: as ourselves (None). Root: as the owner of the server's socket directory when the
    server is reached by a unix socket (the embedded server keeps it private), else ``postgres``.
    """
    if os.geteuid() != 0:
        return None
    if upstream_host.startswith("/"):
        st = os.stat(upstream_host)
        if st.st_uid != 0:
            return st.st_uid, st.st_gid
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("PgBouncer refuses to run as root and there is no postgres/nobody user")


def _ini_value(value: str) -> str:
    """A value for PgBouncer's connection strings, quoted when it needs to be."""
    if value and all(c.isalnum() or c in "._-/" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class PgBouncer:
    """A running PgBouncer (transaction pooling) that forwards every database to one server.

    Clients connect to 127.0.0.1:`port` with the server's user and any database name; there
    are at most `pool_size` server connections per database and user, so concurrent clients
    share them transaction by transaction, as in production.
    """

    port: int
    pool_size: int
    _upstream: dict[str, str] = field(repr=False)
    _process: subprocess.Popen[bytes] = field(repr=False)
    _workdir: Path = field(repr=False)

    def dsn(self, dsn: str) -> str:
        """`dsn` (a database on the upstream server) as reached through this PgBouncer.

        ``options`` (a ``search_path``, for instance) is dropped: PgBouncer 1.18 refuses it as a
        startup parameter. Pass ``schema=`` to the savers and stores instead.
        """
        params = validate_dsn(dsn)
        keep = {k: v for k, v in params.items() if k not in ("host", "hostaddr", "port", "options")}
        keep.pop("password", None)  # PgBouncer logs in to the server; clients use trust
        return make_conninfo("", **keep, host="127.0.0.1", port=str(self.port))

    @property
    def admin_dsn(self) -> str:
        """DSN of PgBouncer's admin console (``SHOW POOLS``, ``SHOW SERVERS``...)."""
        user = self._upstream.get("user", "postgres")
        return make_conninfo(
            "", host="127.0.0.1", port=str(self.port), user=user, dbname="pgbouncer"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self._workdir / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"PgBouncer(port={self.port}, pool_size={self.pool_size})"


def start_pgbouncer(
    server: TestServer, *, pool_size: int = 4, max_client_conn: int = 400
) -> PgBouncer:
    """Start PgBouncer in transaction mode in front of `server` (call `.stop()` when done).

    Raises:
        RuntimeError: the binary is missing or PgBouncer did not start (with its log's tail).
    """
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError(PGBOUNCER_SKIP_REASON)
    upstream = validate_dsn(server.admin_dsn)
    host = upstream.get("host") or "/var/run/postgresql"
    user = upstream.get("user") or pwd.getpwuid(os.geteuid()).pw_name
    target = {"host": host, "port": upstream.get("port") or "5432"}
    if upstream.get("password"):
        # Every client is logged in to the server as this user, with the server's password.
        target.update(user=user, password=upstream["password"])
    databases = " ".join(f"{k}={_ini_value(v)}" for k, v in target.items())

    workdir = Path(tempfile.mkdtemp(prefix="checkpoint-pg-pgbouncer-"))
    port = _free_port()
    ini = f"""\
[databases]
* = {databases}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
admin_users = {user}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {max_client_conn}
max_db_connections = 0
server_check_delay = 0
server_login_retry = 1
query_wait_timeout = 30
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
log_connections = 0
log_disconnections = 0
"""
    (workdir / "pgbouncer.ini").write_text(ini)
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    owner = _run_as(host)
    for path in (workdir, workdir / "pgbouncer.ini", workdir / "users.txt"):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
        if owner is not None:
            os.chown(path, *owner)
    process = subprocess.Popen(
        [binary, "-q", str(workdir / "pgbouncer.ini")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # -q: everything goes to the log file
        cwd=workdir,
        user=owner[0] if owner else None,
        group=owner[1] if owner else None,
        extra_groups=[] if owner else None,
    )
    bouncer = PgBouncer(
        port=port, pool_size=pool_size, _upstream=upstream, _process=process, _workdir=workdir
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            tail = bouncer.log_tail()
            bouncer.stop()
            raise RuntimeError(
                f"PgBouncer exited at start (code {process.returncode}): {err}{tail}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return bouncer
        except OSError:
            time.sleep(0.05)
    bouncer.stop()
    raise RuntimeError(f"PgBouncer did not listen on 127.0.0.1:{port} within 10 s")
