"""A Citus cluster for the tests: a coordinator and two workers on 127.0.0.1, or one you name.

``CHECKPOINT_PG_TEST_CITUS_DSN`` names a running cluster's coordinator (a database where the
``citus`` extension exists and the workers are registered). Without it, a throwaway cluster is
built from this machine's PostgreSQL server binaries when the Citus extension is installed for
them (``citus.so`` in ``pg_config --pkglibdir``): three ``initdb`` directories in a temporary
directory, ``shared_preload_libraries = 'citus'``, trust authentication, free ports, run as
the ``postgres`` system user (PostgreSQL refuses root). README.md ("Tests") says how to install
Citus; nothing here builds it.

`python -m tests.support.citus start DIR` starts such a cluster and prints the coordinator's
DSN (CI runs the saver, store and graph suites against it); `stop DIR` stops it.

Tests isolate themselves by schema: Citus keeps its metadata per database, so a database per
test is not available on a cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.harness import DatabaseFactory, TestServer
from tests.support.failover import SYSTEM_USER, free_port, rig_unavailable, server_bin_dir

CITUS_DSN_ENV = "CHECKPOINT_PG_TEST_CITUS_DSN"
WORKERS = 2


def citus_dsn_from_env() -> str | None:
    """The coordinator DSN `CHECKPOINT_PG_TEST_CITUS_DSN` names, or None."""
    return os.environ.get(CITUS_DSN_ENV, "").strip() or None


def cluster_unavailable() -> str | None:
    """Why no Citus cluster can be started here (None: it can)."""
    why = rig_unavailable()
    if why is not None:
        return f"no Citus cluster: {why}"
    bin_dir = server_bin_dir()
    assert bin_dir is not None
    libdir = subprocess.run(
        [str(bin_dir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not libdir or not (Path(libdir) / "citus.so").exists():
        return (
            f"Citus is not installed for the PostgreSQL in {bin_dir} (no citus.so in "
            f"{libdir or 'its pkglibdir'}); install it (docs/testing.md) or set {CITUS_DSN_ENV}"
        )
    return None


def _as_postgres(*argv: str) -> None:
    subprocess.run(["runuser", "-u", SYSTEM_USER, "--", *argv], check=True, capture_output=True)


def _start_node(bin_dir: Path, data: Path, port: int) -> None:
    if not data.exists():
        _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "shared_preload_libraries = 'citus'\nmax_connections = 300\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                # Tests make and drop tables all the time: 4 shards a table, not 32.
                "citus.shard_count = 4\n"
            )
    _as_postgres(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1",
        "-l",
        str(data.parent / f"{data.name}.log"),
        "-w",
        "start",
    )


def _node_dsn(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def start_cluster(root: Path) -> str:
    """Start (building it first if needed) a cluster under `root`; return the coordinator DSN."""
    bin_dir = server_bin_dir()
    assert bin_dir is not None
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, *_postgres_ids())
    ports = [free_port() for _ in range(WORKERS + 1)]
    for index, port in enumerate(ports):
        _start_node(bin_dir, root / f"node{index}", port)
        (root / f"node{index}.port").write_text(str(port))
        with psycopg.connect(_node_dsn(port), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    with psycopg.connect(_node_dsn(ports[0]), autocommit=True) as conn:
        conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (ports[0],))
        for port in ports[1:]:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))
    return _node_dsn(ports[0])


def stop_cluster(root: Path) -> None:
    """Stop every node under `root` (fast shutdown); the data stays."""
    bin_dir = server_bin_dir()
    assert bin_dir is not None
    for data in sorted(root.glob("node[0-9]")):
        subprocess.run(
            [
                "runuser",
                "-u",
                SYSTEM_USER,
                "--",
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "fast",
                "stop",
            ],
            capture_output=True,
            check=False,
        )


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


@contextmanager
def cluster() -> Iterator[str]:
    """A coordinator DSN for the duration of the block: the env's, or a throwaway cluster's."""
    named = citus_dsn_from_env()
    if named is not None:
        yield named
        return
    root = Path(tempfile.mkdtemp(prefix="cpg-citus-"))
    try:
        yield start_cluster(root)
    finally:
        stop_cluster(root)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def wait_ready(dsn: str, seconds: float = 30.0) -> None:
    """Return once the coordinator accepts connections and sees its workers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
                row = conn.execute("SELECT count(*) FROM citus_get_active_worker_nodes()")
                if (row.fetchone() or (0,))[0] >= 1:
                    return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


@pytest.fixture(scope="session")
def citus_factory() -> Iterator[DatabaseFactory]:
    """Schemas on a Citus coordinator: the env's cluster, else one started for the session;
    without either, the test skips saying why."""
    if citus_dsn_from_env() is None and (why := cluster_unavailable()) is not None:
        pytest.skip(why)
    with cluster() as dsn:
        yield DatabaseFactory(TestServer(admin_dsn=dsn, source="citus"))


@pytest.fixture
def citus_dsn(citus_factory: DatabaseFactory) -> Iterator[str]:
    """A DSN whose search_path is a fresh schema on a Citus coordinator."""
    with citus_factory.schema() as dsn:
        yield dsn


def main(argv: list[str]) -> int:
    """`start DIR` (prints the coordinator DSN) or `stop DIR`."""
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print("usage: python -m tests.support.citus start|stop DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    if argv[0] == "stop":
        stop_cluster(root)
        return 0
    why = cluster_unavailable()
    if why is not None:
        print(why, file=sys.stderr)
        return 1
    dsn = start_cluster(root)
    wait_ready(dsn)
    print(dsn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
