"""The network between the client and the server cut or stalled.

A cut (every connection reset by a proxy the test owns) is seen at once: the next read fails
with ECONNRESET and the operation is retried on a new connection. A stall (packets silently
dropped with nftables — a proxy that merely stops forwarding would still have its kernel ACK
everything) is seen only by TCP: keepalive probes when the client waits for an answer,
tcp_user_timeout when what it sent goes unacknowledged. These tests set both tight
(``keepalives_idle=1``, ``keepalives_interval=1``, ``tcp_user_timeout=2000``) and check the
stall is found in seconds; the package's defaults (`checkpoint_pg._runtime.dsn.tuned_dsn`) find
it in ~16 s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime.retry import RetryPolicy
from tests.support.faults import (
    FAST,
    Admin,
    Stall,
    TableLock,
    TcpProxy,
    checkpoint,
    in_thread,
    named,
    new_app,
    nft_unavailable,
    thread_config,
)

TIGHT = {
    "keepalives_idle": "1",
    "keepalives_interval": "1",
    "keepalives_count": "2",
    "tcp_user_timeout": "2000",
    "connect_timeout": "10",
}


def test_cut_while_idle_is_retried(dsn: str, proxy: TcpProxy) -> None:
    with PostgresSaver.from_conn_string(proxy.dsn(dsn), retry=RetryPolicy(**FAST)) as saver:
        saver.setup()
        config = thread_config()
        cp, versions = checkpoint(saver, "before")
        first = saver.put(config, cp, {"step": 1}, versions)
        assert proxy.cut() >= 1
        cp2, versions2 = checkpoint(saver, "after")
        second = saver.put(config, cp2, {"step": 2}, versions2)
        assert saver.get_tuple(first) is not None
        got = saver.get_tuple(second)
        assert got is not None
        assert got.checkpoint["channel_values"] == {"x": "after"}


def test_cut_during_a_write_is_retried(dsn: str, proxy: TcpProxy, admin: Admin) -> None:
    app = new_app()
    with PostgresSaver.from_conn_string(
        proxy.dsn(named(dsn, app)), retry=RetryPolicy(**FAST)
    ) as saver:
        saver.setup()
        config = thread_config()
        cp, versions = checkpoint(saver, "v")
        lock = TableLock(dsn, "checkpoints")
        try:
            join = in_thread(lambda: saver.put(config, cp, {"step": 1}, versions))
            admin.wait_for_lock_wait(app)
            assert proxy.cut() >= 1
            # The retry comes back through the proxy and waits on the lock like the first.
            deadline = time.monotonic() + 10
            while len(admin.pids(app, waiting=True)) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            lock.release()
        stored = join(20)
        assert saver.get_tuple(stored) is not None


async def test_cut_is_retried_async(dsn: str, proxy: TcpProxy) -> None:
    async with AsyncPostgresSaver.from_conn_string(
        proxy.dsn(dsn), retry=RetryPolicy(**FAST)
    ) as saver:
        await saver.setup()
        config = thread_config()
        cp, versions = checkpoint(saver, "v")
        await saver.aput(config, cp, {"step": 1}, versions)
        proxy.cut()
        assert await saver.aget_tuple(config) is not None


@pytest.fixture
def stall(proxy: TcpProxy) -> Iterator[Stall]:
    if (why := nft_unavailable()) is not None:
        pytest.skip(f"no network stall: {why}")
    s = Stall(proxy.port)
    try:
        yield s
    finally:
        s.heal()


def _detected_after(caplog: pytest.LogCaptureFixture, since: float, timeout: float) -> float:
    """Seconds from `since` (time.time()) to the first retry logged, waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in caplog.records:
            if record.name == "checkpoint_pg.retry":
                return record.created - since
        time.sleep(0.05)
    raise AssertionError(f"the stall was not detected within {timeout}s")


@pytest.mark.parametrize("when", ["waiting for an answer", "sending a statement"])
def test_stall_is_detected_in_seconds_and_retried(
    dsn: str,
    proxy: TcpProxy,
    admin: Admin,
    stall: Stall,
    caplog: pytest.LogCaptureFixture,
    when: str,
) -> None:
    caplog.set_level(logging.WARNING, "checkpoint_pg.retry")
    app = new_app()
    with PostgresSaver.from_conn_string(
        proxy.dsn(named(dsn, app), **TIGHT), pool_size=2, retry=RetryPolicy(**FAST)
    ) as saver:
        saver.setup()
        config = thread_config()
        cp, versions = checkpoint(saver, "v")
        lock = TableLock(dsn, "checkpoints") if when == "waiting for an answer" else None
        try:
            if lock is not None:
                # The statement is sent and acknowledged; the client waits for its answer.
                join = in_thread(lambda: saver.put(config, cp, {"step": 1}, versions))
                admin.wait_for_lock_wait(app)
                since = time.time()
                stall.start()
            else:
                since = time.time()
                stall.start()
                join = in_thread(lambda: saver.put(config, cp, {"step": 1}, versions))
            detected = _detected_after(caplog, since, timeout=10)
            # Keepalives (1 s idle, 1 s apart) / tcp_user_timeout (2 s): a few seconds.
            assert detected < 6, detected
            threading.Timer(0.5, stall.heal).start()
        finally:
            if lock is not None:
                lock.release()
        stored = join(30)
        stall.heal()
        assert saver.get_tuple(stored) is not None
    print(f"stall {when}: detected after {detected:.2f}s")
