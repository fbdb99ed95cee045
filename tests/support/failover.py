"""A primary and a streaming standby of the tests' own, to fail over on purpose.

Built with this machine's PostgreSQL server binaries (`initdb`, `pg_basebackup`, `pg_ctl`;
Debian's ``postgresql-NN`` packages put them in ``/usr/lib/postgresql/NN/bin``), in a temporary
directory, on free ports of 127.0.0.1, run as the ``postgres`` system user (PostgreSQL
refuses to run as root). Never touches the machine's own clusters.

- `Pair.start(synchronous=True)`: the primary waits for the standby to flush every commit
  (``synchronous_standby_names='*'``, ``synchronous_commit=on``) before it acknowledges it.
  With ``synchronous=False`` it acknowledges at once and streams afterwards (asynchronous).
- `Pair.dsn`: both nodes, ``target_session_attrs=read-write``: libpq takes whichever node
  accepts writes now.
- `Pair.kill_primary(mode)`: ``pg_ctl stop -m fast`` (backends get AdminShutdown, the
  standby receives all WAL before the primary exits), ``immediate`` (the server quits at
  once), or ``crash`` (SIGKILL to every process of the primary).
- `Pair.replication_paused()`: the primary's WAL sender frozen, so the standby falls behind.
- `Pair.promote()`: ``pg_ctl promote``, returning once the standby is the new primary.

The standby's own settings never name a synchronous standby: after promotion it has none, and
it must not wait for one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

SYSTEM_USER = "postgres"


def server_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/NN/bin`` with the server binaries, or ``$PG_BIN``."""
    candidates = [os.environ["PG_BIN"]] if os.environ.get("PG_BIN") else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        path = Path(candidate)
        if all((path / tool).exists() for tool in ("initdb", "pg_basebackup", "pg_ctl")):
            return path
    return None


def rig_unavailable() -> str | None:
    """Why no primary/standby pair can be built here (None: it can)."""
    if server_bin_dir() is None:
        return (
            "no PostgreSQL server binaries (initdb, pg_basebackup, pg_ctl) in "
            "/usr/lib/postgresql/*/bin or $PG_BIN: apt-get install postgresql to run failovers"
        )
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return f"no '{SYSTEM_USER}' system user to run the primary and the standby as"
    if os.geteuid() != 0:
        return "the failover rig runs its servers as the 'postgres' user, which needs root"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) is missing: it starts the servers as 'postgres'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One PostgreSQL server of the pair: its data directory and port."""

    def __init__(self, bin_dir: Path, root: Path, name: str) -> None:
        self.bin = bin_dir
        self.name = name
        self.pgdata = root / name
        self.port = free_port()
        self.socket_dir = root
        self.log = root / f"{name}.log"

    def run(self, tool: str, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            ["runuser", "-u", SYSTEM_USER, "--", str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def start(self, *settings: str) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",  # a test rig: durability across an OS crash is not on test
                "-c full_page_writes=off",
                "-c max_connections=100",
                *(f"-c {s}" for s in settings),
            ]
        )
        self.run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-o", options, "-w",
                 "start")  # fmt: skip

    def stop(self, mode: str) -> None:
        self.run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def dsn(self, dbname: str = "postgres", **extra: str) -> str:
        return make_conninfo(
            "", host="127.0.0.1", port=str(self.port), user=SYSTEM_USER, dbname=dbname, **extra
        )

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5)

    def walreceiver_pid(self) -> int | None:
        with self.admin() as conn:
            row = conn.execute("SELECT pid FROM pg_stat_wal_receiver").fetchone()
        return int(str(row[0])) if row and row[0] is not None else None


class Pair:
    """A primary, its streaming standby, and the multi-host DSN that finds the writable one."""

    def __init__(self, root: Path) -> None:
        bin_dir = server_bin_dir()
        assert bin_dir is not None
        self.root = root
        self.primary = Node(bin_dir, root, "primary")
        self.standby = Node(bin_dir, root, "standby")
        self.dbname = "failover"

    @property
    def dsn(self) -> str:
        """Both nodes, primary first; libpq connects to whichever accepts writes."""
        return make_conninfo(
            "",
            host="127.0.0.1,127.0.0.1",
            port=f"{self.primary.port},{self.standby.port}",
            user=SYSTEM_USER,
            dbname=self.dbname,
            target_session_attrs="read-write",
            connect_timeout="2",
        )

    def start(self, *, synchronous: bool) -> None:
        p, s = self.primary, self.standby
        p.run("initdb", "-D", str(p.pgdata), "-U", SYSTEM_USER, "--auth=trust", "-E", "UTF8",
              "--no-sync")  # fmt: skip
        p.start("wal_level=replica", "max_wal_senders=5", "wal_keep_size=256MB")
        with p.admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        p.run("pg_basebackup", "-D", str(s.pgdata), "-d", p.dsn(application_name="standby"),
              "-X", "stream", "-R", "-c", "fast", "--no-sync")  # fmt: skip
        # wal_retrieve_retry_interval: after losing its primary, the standby looks for WAL
        # again (and notices a promotion request) every 100 ms rather than every 5 s.
        s.start("hot_standby=on", "wal_receiver_status_interval=1s",
                "wal_retrieve_retry_interval=100ms")  # fmt: skip
        if synchronous:
            with p.admin() as conn:
                conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
                conn.execute("ALTER SYSTEM SET synchronous_commit = 'on'")
                conn.execute("SELECT pg_reload_conf()")
        self.wait_streaming(sync_state="sync" if synchronous else "async")

    def wait_streaming(self, *, sync_state: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.primary.admin() as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT state, sync_state FROM pg_stat_replication").fetchone()
                if row == ("streaming", sync_state):
                    return
                time.sleep(0.05)
        raise AssertionError(f"the standby did not reach streaming/{sync_state} in {timeout}s")

    def wait_replayed(self, timeout: float = 10.0) -> None:
        """Until the standby has replayed everything the primary wrote so far (synchronous
        commit waits for the standby to flush the WAL, not to apply it)."""
        with self.primary.admin() as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        deadline = time.monotonic() + timeout
        with self.standby.admin() as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0", target
                ).fetchone()
                if row == (True,):
                    return
                time.sleep(0.02)
        raise AssertionError(f"the standby did not replay the primary's WAL in {timeout}s")

    def replication_lag(self) -> int | None:
        """Bytes of WAL the primary wrote that the standby has not flushed yet (None: no
        standby connected)."""
        with self.primary.admin() as conn:
            row = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) FROM pg_stat_replication"
            ).fetchone()
        return None if row is None or row[0] is None else int(str(row[0]))

    def kill_primary(self, mode: str) -> None:
        """``pg_ctl stop -m mode``, or for ``crash`` `crash_primary`."""
        if mode == "crash":
            self.crash_primary()
        else:
            self.primary.stop(mode)

    def promote(self, timeout: float = 30.0) -> None:
        """``pg_ctl promote``, then return as soon as the standby accepts writes (polled every
        5 ms: ``pg_ctl promote -w`` looks only every 100 ms)."""
        with self.standby.admin() as conn:
            self.standby.run("pg_ctl", "-D", str(self.standby.pgdata), "-W", "promote")
            deadline = time.monotonic() + timeout
            while conn.execute("SELECT pg_is_in_recovery()").fetchone() != (False,):
                assert time.monotonic() < deadline, f"no promotion within {timeout}s"
                time.sleep(0.005)

    @contextlib.contextmanager
    def replication_paused(self) -> Iterator[None]:
        """Freeze the primary's WAL sender (SIGSTOP): the standby stops receiving WAL while
        the primary, if it does not wait for the standby, keeps acknowledging commits."""
        with self.primary.admin() as conn:
            row = conn.execute("SELECT pid FROM pg_stat_replication").fetchone()
        assert row is not None, "no standby is connected"
        pid = int(str(row[0]))
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def crash_primary(self) -> None:
        """SIGKILL the primary's postmaster and every child of it, at once: the machine died.
        Unlike ``pg_ctl stop -m immediate`` nothing gets a chance to run, not even a WAL
        sender that was stopped."""
        postmaster = int((self.primary.pgdata / "postmaster.pid").read_text().split()[0])
        children = []  # found first: once the postmaster is gone they belong to init
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(stat.parent.name))
        for pid in (postmaster, *children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        (self.primary.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def close(self) -> None:
        for node in (self.primary, self.standby):
            if node.running():
                with contextlib.suppress(Exception):
                    node.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pair_root() -> Iterator[Path]:
    if (why := rig_unavailable()) is not None:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="cpg-failover-"))
    shutil.chown(root, user=SYSTEM_USER, group=SYSTEM_USER)
    root.chmod(0o700)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sync_pair(pair_root: Path) -> Iterator[Pair]:
    """A primary and a synchronous standby, torn down afterwards."""
    pair = Pair(pair_root)
    try:
        pair.start(synchronous=True)
        yield pair
    finally:
        pair.close()


@pytest.fixture
def async_pair(pair_root: Path) -> Iterator[Pair]:
    """A primary and an asynchronous standby, torn down afterwards."""
    pair = Pair(pair_root)
    try:
        pair.start(synchronous=False)
        yield pair
    finally:
        pair.close()
