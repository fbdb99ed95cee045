"""`encryption=RowBoundEncryption(...)` on the store: each item value sealed to (namespace, key).

A value planted unencrypted, altered, or moved from another item raises `TamperedValueError`
naming the item, on get and on search alike. Features that read values in SQL (filters,
semantic search, range indexes) are refused with it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from checkpoint_pg import RowBoundEncryption
from store import AsyncPostgresStore, PostgresStore
from store.errors import InvalidFilterError, InvalidIndexConfigError, TamperedValueError

SECRET = "the launch code is 0000"
K1 = os.urandom(32)
K2 = os.urandom(32)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def store_on(conn: Any, keys: dict[str, bytes] | None = None, current: str | None = None) -> Any:
    store = PostgresStore(conn, encryption=RowBoundEncryption(keys or {"k1": K1}, current))
    store.setup()
    return store


def sealed(conn: Any, key: str) -> bytes:
    (value,) = conn.execute("SELECT value FROM store WHERE key = %s", [key]).fetchone()
    return base64.b64decode(value["$rowaead"])


def test_values_are_sealed_and_read_back_by_get_and_search(conn: Any) -> None:
    store = store_on(conn)
    store.put(("users", "u1"), "profile", {"note": SECRET, "n": 1})
    assert store.get(("users", "u1"), "profile").value == {"note": SECRET, "n": 1}
    assert [i.value for i in store.search(("users",))] == [{"note": SECRET, "n": 1}]
    assert SECRET not in str(conn.execute("SELECT * FROM store").fetchall())


async def test_the_async_store_reads_what_the_sync_store_sealed(dsn: str, conn: Any) -> None:
    store_on(conn).put(("a",), "k", {"x": SECRET})
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
        store = AsyncPostgresStore(aconn, encryption=RowBoundEncryption({"k1": K1}))
        item = await store.aget(("a",), "k")
    assert item is not None
    assert item.value == {"x": SECRET}


def test_a_planted_unencrypted_item_is_refused(conn: Any) -> None:
    store = store_on(conn)
    conn.execute(
        "INSERT INTO store (prefix, key, value) VALUES ('a', 'planted', '{\"admin\": true}')"
    )
    with pytest.raises(TamperedValueError, match="not encrypted") as caught:
        store.get(("a",), "planted")
    assert caught.value.row == "store(prefix='a', key='planted')"
    with pytest.raises(TamperedValueError):
        store.search(("a",))


def test_a_planted_item_that_looks_sealed_is_refused(conn: Any) -> None:
    store = store_on(conn)
    forged = base64.b64encode(b"\xa1\x02k1" + os.urandom(40)).decode()
    conn.execute(
        "INSERT INTO store (prefix, key, value) VALUES ('a', 'forged', %s)",
        [json.dumps({"$rowaead": forged})],
    )
    with pytest.raises(TamperedValueError, match="altered"):
        store.get(("a",), "forged")


def test_a_flipped_byte_in_an_item_is_refused(conn: Any) -> None:
    store = store_on(conn)
    store.put(("a",), "k", {"x": 1})
    data = bytearray(sealed(conn, "k"))
    data[-1] ^= 1
    conn.execute(
        "UPDATE store SET value = %s WHERE key = 'k'",
        [json.dumps({"$rowaead": base64.b64encode(bytes(data)).decode()})],
    )
    with pytest.raises(TamperedValueError) as caught:
        store.get(("a",), "k")
    assert caught.value.row == "store(prefix='a', key='k')"


def test_an_item_moved_to_another_key_or_namespace_is_refused(conn: Any) -> None:
    store = store_on(conn)
    store.put(("victim",), "grants", {"admin": True})
    store.put(("attacker",), "grants", {"admin": False})
    store.put(("attacker",), "other", {"admin": False})
    victim = conn.execute("SELECT value FROM store WHERE prefix = 'victim'").fetchone()
    conn.execute("UPDATE store SET value = %s WHERE prefix = 'attacker'", [Jsonb(victim[0])])
    with pytest.raises(TamperedValueError):
        store.get(("attacker",), "grants")
    with pytest.raises(TamperedValueError):
        store.get(("attacker",), "other")
    assert store.get(("victim",), "grants").value == {"admin": True}


def test_rotation_keeps_old_items_readable_and_seals_new_ones_with_the_current_key(
    conn: Any,
) -> None:
    store_on(conn, {"k1": K1}).put(("a",), "old", {"v": 1})
    rotated = store_on(conn, {"k1": K1, "k2": K2}, current="k2")
    rotated.put(("a",), "new", {"v": 2})
    assert rotated.get(("a",), "old").value == {"v": 1}
    assert sealed(conn, "old")[2:4] == b"k1"
    assert sealed(conn, "new")[2:4] == b"k2"
    with pytest.raises(TamperedValueError, match="'k1', which is not in the keyring"):
        store_on(conn, {"k2": K2}).get(("a",), "old")


def test_search_filters_are_refused_as_they_would_read_sealed_values(conn: Any) -> None:
    store = store_on(conn)
    with pytest.raises(InvalidFilterError, match="encrypts"):
        store.search(("a",), filter={"x": 1})


def test_semantic_search_and_range_indexes_are_refused_with_encryption(conn: Any) -> None:
    enc = RowBoundEncryption({"k1": K1})
    with pytest.raises(InvalidIndexConfigError):
        PostgresStore(conn, encryption=enc, range_index_fields=["score"])
    with pytest.raises(InvalidIndexConfigError):
        PostgresStore(
            conn,
            encryption=enc,
            index={"dims": 2, "embed": lambda texts: [[0.0, 1.0]] * len(texts)},
        )


def test_without_encryption_values_stay_plain_json(conn: Any) -> None:
    store = PostgresStore(conn)
    store.setup()
    store.put(("a",), "k", {"x": 1})
    assert conn.execute("SELECT value FROM store").fetchone() == ({"x": 1},)
