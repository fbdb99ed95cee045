"""Tools to break things on purpose: kill backends, hold locks, cut and stall the network.

Everything runs against real PostgreSQL. Connections under test carry an
``application_name`` of their own, so an admin connection finds exactly their backends in
``pg_stat_activity`` and terminates them (`pg_terminate_backend`, which waits for the backend
to exit). A statement is caught "during" its run by making it wait on a lock another
connection holds, and terminated while it waits.
"""

from __future__ import annotations

import contextlib
import operator
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.harness import TestServer


def thread_config(thread_id: str | None = None) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id or uuid.uuid4().hex, "checkpoint_ns": ""}}


def checkpoint(saver: Any, value: Any) -> tuple[Any, dict[str, str]]:
    cp = empty_checkpoint()
    version = saver.get_next_version(None, None)
    cp["channel_values"] = {"x": value}
    cp["channel_versions"] = {"x": version}
    return cp, {"x": version}


# Retries in these tests: quick, but enough attempts for a restart.
FAST = {"base_delay": 0.05, "max_delay": 0.5, "total_budget": 20.0, "max_attempts": 8}


def named(dsn: str, app: str) -> str:
    """`dsn` with its own ``application_name``."""
    return make_conninfo(dsn, application_name=app)


def new_app() -> str:
    return f"fault-{uuid.uuid4().hex[:10]}"


class Admin:
    """A superuser connection that watches and terminates the backends of one application."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)

    def pids(self, app: str, *, waiting: bool = False) -> list[int]:
        sql = (
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "AND pid <> pg_backend_pid()"
        )
        if waiting:
            sql += " AND wait_event_type = 'Lock'"
        return [r[0] for r in self.conn.execute(sql, (app,)).fetchall()]

    def terminate(self, app: str) -> int:
        """Terminate every backend of `app`; wait until they are gone. Returns how many."""
        pids = self.pids(app)
        for pid in pids:
            self.conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        return len(pids)

    def kill(self, pid: int) -> None:
        """Terminate one backend and wait until it is gone."""
        assert self.conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (
            True,
        )

    def wait_for_lock_wait(self, app: str, timeout: float = 10.0) -> int:
        """The pid of a backend of `app` once it waits on a lock."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pids := self.pids(app, waiting=True):
                return pids[0]
            time.sleep(0.01)
        raise AssertionError(f"no backend of {app} waited on a lock within {timeout}s")

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def admin(pg_server: TestServer) -> Iterator[Admin]:
    a = Admin(pg_server.admin_dsn)
    try:
        yield a
    finally:
        a.close()


class TableLock:
    """Hold ``LOCK TABLE … IN EXCLUSIVE MODE`` (reads pass, writes wait) from another session."""

    def __init__(self, dsn: str, *tables: str) -> None:
        self.conn = psycopg.connect(dsn)
        for table in tables:
            self.conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def in_thread(fn: Callable[[], Any]) -> Callable[[float], Any]:
    """Start `fn` in a thread; the returned function joins it and returns (or raises) its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join(timeout: float) -> Any:
        thread.join(timeout)
        assert not thread.is_alive(), f"still running after {timeout}s: it hangs"
        if "error" in box:
            raise box["error"]
        return box.get("value")

    return join


# -- a small real graph --------------------------------------------------------------------------


class Steps(TypedDict):
    steps: Annotated[list[str], operator.add]


def graph_builder(hook: Callable[[str], None] | None = None) -> StateGraph[Any, Any, Any, Any]:
    """a → b → c → d; `hook(node)` runs inside each node (to break things mid-run)."""
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(Steps)

    def node(name: str) -> Callable[[Steps], dict[str, list[str]]]:
        def run(state: Steps) -> dict[str, list[str]]:
            if hook is not None:
                hook(name)
            return {"steps": [name]}

        return run

    for name in "abcd":
        builder.add_node(name, node(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", "d")
    builder.add_edge("d", END)
    return builder


# Checkpoints a run of the graph above stores up to its interrupt before "d": the input, the
# start step, then one per node a, b, c.
CHECKPOINTS_BEFORE_D = 5


# -- a TCP proxy the tests own -----------------------------------------------------------------


def upstream_of(dsn: str) -> tuple[int, Any]:
    """(address family, address) of the server `dsn` names (TCP or a Unix socket)."""
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "localhost").split(",")[0]
    port = int(str(params.get("port") or 5432).split(",")[0])
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (str(params.get("hostaddr") or host), port)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the server; `cut` resets every connection through it."""

    def __init__(self, dsn: str) -> None:
        self.family, self.target = upstream_of(dsn)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self, dsn: str, **extra: Any) -> str:
        """`dsn` pointed at the proxy."""
        params = {k: v for k, v in conninfo_to_dict(dsn).items() if k != "hostaddr"}
        params.update(host="127.0.0.1", port=str(self.port), **extra)
        return make_conninfo("", **params)

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.socket(self.family, socket.SOCK_STREAM)
            try:
                server.connect(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        """Reset every connection through the proxy (RST to the client); keep accepting."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, server in pairs:
            # Linger 0: closing sends RST. SHUT_RD first wakes the pump threads blocked in
            # recv, which otherwise keep the sockets open (close alone would send nothing).
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
                sock.close()
        return len(pairs)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.cut()


@pytest.fixture
def proxy(pg_server: TestServer) -> Iterator[TcpProxy]:
    p = TcpProxy(pg_server.admin_dsn)
    try:
        yield p
    finally:
        p.close()


# -- a real packet drop (nftables) -------------------------------------------------------------


def nft_unavailable() -> str | None:
    """Why nftables cannot drop packets here (None: it can)."""
    nft = shutil.which("nft")
    if nft is None:
        return "nftables is not installed (apt-get install -y nftables) so no stall can be made"
    if os.geteuid() != 0:
        return "dropping packets with nftables needs root"
    probe = subprocess.run([nft, "list", "tables"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"nft cannot manage rules here: {probe.stderr.strip()[:200]}"
    return None


class Stall:
    """Silently drop every packet to and from one local TCP port, as a dead link would.

    The drop happens on input, after the sender's kernel accepted the packet: nobody ACKs,
    nobody resets, so only TCP keepalives and tcp_user_timeout can tell. One nftables table
    per port, removed by `heal`.
    """

    def __init__(self, port: int) -> None:
        self.table = f"cpg_faults_{port}"
        self.port = port
        self.active = False
        self.lock = threading.Lock()

    def _nft(self, *args: str) -> None:
        subprocess.run(["nft", *args], check=True, capture_output=True)

    def start(self) -> None:
        self._nft("add", "table", "inet", self.table)
        self._nft(
            "add", "chain", "inet", self.table, "in",
            "{ type filter hook input priority -10 ; }",
        )  # fmt: skip
        self._nft("add", "rule", "inet", self.table, "in", "tcp", "dport", str(self.port), "drop")
        self._nft("add", "rule", "inet", self.table, "in", "tcp", "sport", str(self.port), "drop")
        self.active = True

    def heal(self) -> None:
        with self.lock:
            if self.active:
                self._nft("delete", "table", "inet", self.table)
                self.active = False
