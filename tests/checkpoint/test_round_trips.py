"""One statement (one network round trip) per hot-path call, whatever the number of channels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import pytest

from checkpoint_pg import PostgresSaver
from checkpoint_pg._sql import MAX_VALUES_ROWS
from tests.checkpoint.helpers import checkpoint, config


class CountingCursor(psycopg.Cursor[Any]):
    executed: ClassVar[list[str]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        CountingCursor.executed.append(str(query))
        return super().execute(query, params, **kwargs)


@pytest.fixture
def counted(dsn: str) -> Iterator[tuple[PostgresSaver, list[str]]]:
    with psycopg.connect(dsn, autocommit=True, cursor_factory=CountingCursor) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        CountingCursor.executed = []
        yield saver, CountingCursor.executed


def _wide_checkpoint(n: int) -> Any:
    return checkpoint({f"ch{i}": {"value": i, "pad": "x" * 50} for i in range(n)})


def test_put_with_twenty_channels_is_one_statement(
    counted: tuple[PostgresSaver, list[str]],
) -> None:
    saver, executed = counted
    cp = _wide_checkpoint(20)
    saver.put(config("t"), cp, {}, cp["channel_versions"])
    assert len(executed) == 1


def test_put_writes_with_twenty_writes_is_one_statement(
    counted: tuple[PostgresSaver, list[str]],
) -> None:
    saver, executed = counted
    cp = _wide_checkpoint(1)
    stored = saver.put(config("t"), cp, {}, cp["channel_versions"])
    executed.clear()
    saver.put_writes(stored, [(f"ch{i}", i) for i in range(20)], "task")
    assert len(executed) == 1


def test_get_tuple_of_a_wide_checkpoint_with_writes_is_one_statement(
    counted: tuple[PostgresSaver, list[str]],
) -> None:
    saver, executed = counted
    cp = _wide_checkpoint(20)
    stored = saver.put(config("t"), cp, {}, cp["channel_versions"])
    saver.put_writes(stored, [(f"ch{i}", i) for i in range(20)], "task")
    executed.clear()
    got = saver.get_tuple(config("t"))
    assert got is not None
    assert len(got.checkpoint["channel_values"]) == 20
    assert len(executed) == 1


def test_list_with_a_limit_is_one_statement(counted: tuple[PostgresSaver, list[str]]) -> None:
    saver, executed = counted
    parent = config("t")
    for _ in range(15):
        cp = _wide_checkpoint(2)
        parent = saver.put(parent, cp, {}, cp["channel_versions"])
    executed.clear()
    assert len(list(saver.list(config("t"), limit=10))) == 10
    assert len(executed) == 1


def test_empty_writes_send_nothing(counted: tuple[PostgresSaver, list[str]]) -> None:
    saver, executed = counted
    saver.put_writes(config("t", "", "some-id"), [], "task")
    assert executed == []


# Up to MAX_VALUES_ROWS rows travel as VALUES rows, more as arrays: both sides of the border.
@pytest.mark.parametrize("channels", [0, 1, MAX_VALUES_ROWS, MAX_VALUES_ROWS + 1, 20])
def test_put_stores_every_new_blob_whatever_their_number(dsn: str, channels: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        cp = _wide_checkpoint(channels)
        saver.put(config("t"), cp, {"step": 1}, cp["channel_versions"])
        got = saver.get_tuple(config("t"))
        assert got is not None
        assert got.checkpoint["channel_values"] == cp["channel_values"]
        assert got.metadata["step"] == 1
        blobs = conn.execute("SELECT count(*) FROM checkpoint_blobs").fetchone()
        assert blobs == (channels,)


@pytest.mark.parametrize("writes", [1, MAX_VALUES_ROWS, MAX_VALUES_ROWS + 1, 20])
@pytest.mark.parametrize("special", [False, True], ids=["task-writes", "error-writes"])
def test_put_writes_stores_every_write_whatever_their_number(
    dsn: str, writes: int, special: bool
) -> None:
    # Special channels (errors, interrupts) are upserted by index; others inserted if absent.
    channel = "__error__" if special else "ch"
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        cp = _wide_checkpoint(1)
        stored = saver.put(config("t"), cp, {}, cp["channel_versions"])
        sent = [(f"{channel}{i}" if not special else channel, {"n": i}) for i in range(writes)]
        saver.put_writes(stored, sent, "task")
        saver.put_writes(stored, sent, "task")  # again: idempotent either way
        got = saver.get_tuple(stored)
        assert got is not None
        if special:  # one write per index: the special channel maps to a fixed index
            assert [w[1:] for w in got.pending_writes] == [sent[-1]]
        else:
            assert [w[1:] for w in got.pending_writes] == sent
