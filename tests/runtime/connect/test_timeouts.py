"""A server that accepts the TCP connection and never answers fails within connect_timeout.

``connect_timeout`` is 5 s unless the DSN sets it; the DSN's own value wins.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from psycopg.conninfo import conninfo_to_dict

from checkpoint_pg import PostgresSaver
from checkpoint_pg._runtime.dsn import tuned_dsn
from checkpoint_pg.errors import ConnectionFailedError
from tests.support.connect import SECRET


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener completes the TCP handshake and then says nothing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_connect_timeout_is_five_seconds_unless_the_dsn_sets_it() -> None:
    assert conninfo_to_dict(tuned_dsn("host=db"))["connect_timeout"] == "5"
    assert conninfo_to_dict(tuned_dsn("host=db connect_timeout=2"))["connect_timeout"] == "2"


def test_a_silent_server_fails_within_the_dsns_connect_timeout(silent_port: int) -> None:
    dsn = f"host=127.0.0.1 port={silent_port} user=u password={SECRET} connect_timeout=2"
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught, PostgresSaver.from_conn_string(dsn):
        pass
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 5
    assert "timeout" in caught.value.reason
    assert SECRET not in str(caught.value)


def test_a_silent_server_fails_within_the_default_five_seconds(silent_port: int) -> None:
    dsn = f"host=127.0.0.1 port={silent_port} user=u password={SECRET}"
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError), PostgresSaver.from_conn_string(dsn):
        pass
    assert time.monotonic() - started < 10
