"""`checkpoint-pg reencrypt`: every sealed value moves to the keyring's current key.

The keyring comes from ``$CHECKPOINT_PG_KEYS`` or ``--keys-file``, never from the command line,
and no key is ever printed.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from checkpoint_pg import PostgresSaver, RowBoundEncryption, TamperedValueError
from store import PostgresStore
from tests.checkpoint.helpers import checkpoint, config
from tests.cli.conftest import invoke

K1 = os.urandom(32)
K2 = os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def keyring_json(current: str, **keys: bytes) -> str:
    return json.dumps({"current": current, "keys": {k: b64(v) for k, v in keys.items()}})


def write_everything(dsn: str, enc: RowBoundEncryption, thread_id: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, encryption=enc)
        saver.setup()
        cp = checkpoint({"note": "value of " + thread_id})
        stored = saver.put(config(thread_id), cp, {}, cp["channel_versions"])
        saver.put_writes(stored, [("note", "write of " + thread_id)], "task-1")
        store = PostgresStore(conn, encryption=enc)
        store.setup()
        store.put(("ns",), thread_id, {"v": thread_id})
    return stored


def key_ids(dsn: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with psycopg.connect(dsn) as conn:
        for table in ("checkpoint_blobs", "checkpoint_writes"):
            rows = conn.execute(f"SELECT thread_id, substring(blob from 3 for 2) FROM {table}")
            for thread_id, key_id in rows:
                found.setdefault(thread_id, set()).add(bytes(key_id).decode())
        for key, value in conn.execute("SELECT key, value FROM store"):
            found.setdefault("store:" + key, set()).add(
                base64.b64decode(value["$rowaead"])[2:4].decode()
            )
    return found


def reads_everything(dsn: str, enc: RowBoundEncryption, *threads: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, encryption=enc)
        store = PostgresStore(conn, encryption=enc)
        for thread_id in threads:
            got = saver.get_tuple(config(thread_id))
            assert got is not None
            assert got.checkpoint["channel_values"] == {"note": "value of " + thread_id}
            assert got.pending_writes == [("task-1", "note", "write of " + thread_id)]
            assert store.get(("ns",), thread_id).value == {"v": thread_id}  # type: ignore[union-attr]


def assert_no_key_in(text: str) -> None:
    for key in (K1, K2):
        assert b64(key) not in text
        assert key.hex() not in text


def test_reencrypt_moves_every_table_to_the_current_key_and_the_old_key_can_go(dsn: str) -> None:
    write_everything(dsn, RowBoundEncryption({"k1": K1}), "a")
    write_everything(dsn, RowBoundEncryption({"k1": K1}), "b")
    env = {"CHECKPOINT_PG_KEYS": keyring_json("k2", k1=K1, k2=K2)}
    result = invoke("reencrypt", "--dsn", dsn, "--batch", "2", "--json", env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["current_key"] == "k2"
    assert {t["table"]: t["reencrypted"] for t in report["tables"]} == {
        "checkpoint_blobs": 4,  # per thread: the value and the checkpoint's seal
        "checkpoint_writes": 2,
        "store": 2,
    }
    assert "reencrypt checkpoint_blobs: 4 read, 4 re-encrypted" in result.stderr
    assert all(ids == {"k2"} for ids in key_ids(dsn).values())
    assert_no_key_in(result.output)
    reads_everything(dsn, RowBoundEncryption({"k2": K2}), "a", "b")
    again = invoke("reencrypt", "--dsn", dsn, "--json", env=env)
    assert {t["table"]: t["already_current"] for t in json.loads(again.stdout)["tables"]} == {
        "checkpoint_blobs": 4,
        "checkpoint_writes": 2,
        "store": 2,
    }


def test_dry_run_counts_and_changes_nothing(dsn: str) -> None:
    write_everything(dsn, RowBoundEncryption({"k1": K1}), "a")
    env = {"CHECKPOINT_PG_KEYS": keyring_json("k2", k1=K1, k2=K2)}
    result = invoke("reencrypt", "--dsn", dsn, "--dry-run", env=env)
    assert result.exit_code == 0, result.output
    assert "would re-encrypt" in result.stderr
    assert all(ids == {"k1"} for ids in key_ids(dsn).values())


def test_one_thread_only_with_thread_and_a_keyring_file(dsn: str, tmp_path: Path) -> None:
    write_everything(dsn, RowBoundEncryption({"k1": K1}), "a")
    write_everything(dsn, RowBoundEncryption({"k1": K1}), "b")
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(keyring_json("k2", k1=K1, k2=K2))
    result = invoke("reencrypt", "--dsn", dsn, "--thread", "a", "--keys-file", str(keys_file))
    assert result.exit_code == 0, result.output
    ids = key_ids(dsn)
    assert ids["a"] == {"k2"}
    assert ids["b"] == {"k1"}
    assert ids["store:a"] == {"k1"}  # the store is not per thread


def test_a_value_that_does_not_open_is_left_alone_and_reported(dsn: str) -> None:
    write_everything(dsn, RowBoundEncryption({"k1": K1}), "a")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE checkpoint_writes SET blob = set_byte(blob, 30, get_byte(blob, 30) # 1)"
        )
    env = {"CHECKPOINT_PG_KEYS": keyring_json("k2", k1=K1, k2=K2)}
    result = invoke("reencrypt", "--dsn", dsn, env=env)
    assert result.exit_code == 1
    assert "1 value(s) did not open" in result.output
    assert "checkpoint_writes(thread_id='a'" in result.output
    assert_no_key_in(result.output)
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, encryption=RowBoundEncryption({"k1": K1, "k2": K2}))
        with pytest.raises(TamperedValueError):
            saver.get_tuple(config("a"))


def test_without_a_keyring_it_says_where_to_put_one(dsn: str) -> None:
    result = invoke("reencrypt", "--dsn", dsn, env={"CHECKPOINT_PG_KEYS": ""})
    assert result.exit_code == 2
    assert "$CHECKPOINT_PG_KEYS is not set" in result.output


def test_a_bad_keyring_is_reported_without_its_keys(dsn: str) -> None:
    bad = json.dumps({"current": "k1", "keys": {"k1": b64(K1)[:10], "k2": b64(K2)}})
    result = invoke("reencrypt", "--dsn", dsn, env={"CHECKPOINT_PG_KEYS": bad})
    assert result.exit_code == 2
    assert "key 'k1'" in result.output
    assert_no_key_in(result.output)
    assert b64(K1)[:10] not in result.output


def test_the_other_commands_read_sealed_rows_with_the_keyring_in_the_environment(
    dsn: str,
) -> None:
    write_everything(dsn, RowBoundEncryption({"k1": K1}), "a")
    env = {"CHECKPOINT_PG_KEYS": keyring_json("k1", k1=K1)}
    result = invoke("show", "a", "--dsn", dsn, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert "value of a" in result.stdout
    assert_no_key_in(result.output)
    copied = invoke("copy", "a", "b", "--dsn", dsn, env=env)
    assert copied.exit_code == 0, copied.output
    reads_everything_of_thread(dsn, RowBoundEncryption({"k1": K1}), "b", "a")


def reads_everything_of_thread(dsn: str, enc: RowBoundEncryption, thread_id: str, of: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = PostgresSaver(conn, encryption=enc).get_tuple(config(thread_id))
    assert got is not None
    assert got.checkpoint["channel_values"] == {"note": "value of " + of}
