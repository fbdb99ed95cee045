"""copy, delete, stats and sweep."""

from __future__ import annotations

import psycopg

from tests.cli.conftest import CHAT, WAITING, Seeded, parsed
from tests.cli.terminal import on_terminal


def _checkpoints(dsn: str, thread_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_copy_copies_the_whole_history(seeded: Seeded) -> None:
    result = seeded.run("copy", CHAT, "chat-copy")
    assert result.exit_code == 0
    assert "6 checkpoint(s)" in result.stdout
    copied = parsed(seeded.run("history", "chat-copy", "--json"))["checkpoints"]
    assert [c["checkpoint_id"] for c in copied] == seeded.chat_checkpoints


def test_copy_refuses_an_existing_target_unless_forced(seeded: Seeded) -> None:
    refused = seeded.run("copy", CHAT, WAITING)
    assert refused.exit_code == 1
    assert "already exists" in refused.stderr
    assert _checkpoints(seeded.dsn, WAITING) == 2
    forced = parsed(seeded.run("copy", CHAT, WAITING, "--force", "--json"))
    assert forced == {"source": CHAT, "target": WAITING, "checkpoints_copied": 6}


def test_copy_of_an_unknown_thread_is_not_found(seeded: Seeded) -> None:
    result = seeded.run("copy", "ghost", "other")
    assert result.exit_code == 3
    assert "no such thread: ghost" in result.stderr


def test_delete_asks_first_and_keeps_the_thread_when_refused(seeded: Seeded) -> None:
    result = on_terminal("delete", CHAT, answer="n", dsn=seeded.dsn)
    assert result.exit_code == 1
    assert f"Delete thread {CHAT} (6 checkpoints)" in result.stderr
    assert _checkpoints(seeded.dsn, CHAT) == 6


def test_delete_after_yes_deletes_the_thread(seeded: Seeded) -> None:
    result = on_terminal("delete", CHAT, answer="y", dsn=seeded.dsn)
    assert result.exit_code == 0
    assert _checkpoints(seeded.dsn, CHAT) == 0
    assert _checkpoints(seeded.dsn, WAITING) == 2


def test_delete_yes_json_without_prompt(seeded: Seeded) -> None:
    data = parsed(seeded.run("delete", WAITING, "--yes", "--json"))
    assert data == {"thread_id": WAITING, "deleted": True, "checkpoints_deleted": 2}


def test_delete_of_an_unknown_thread_is_not_found(seeded: Seeded) -> None:
    assert seeded.run("delete", "ghost", "--yes").exit_code == 3


def test_stats_counts_rows_and_sizes(seeded: Seeded) -> None:
    data = parsed(seeded.run("stats", "--json", "--top", "2"))
    assert data["counts"]["threads"] == 3
    assert data["counts"]["checkpoints"] == 14
    assert data["counts"]["store_items"] == 4
    assert set(data["table_bytes"]) >= {"checkpoints", "checkpoint_blobs", "checkpoint_writes"}
    assert data["total_bytes"] == sum(data["table_bytes"].values())
    assert [t["thread_id"] for t in data["biggest_threads"]][:1] == [CHAT]
    table = seeded.run("stats")
    assert "biggest threads" in table.stdout
    assert "checkpoint_blobs" in table.stdout


def test_sweep_deletes_expired_store_items_and_applies_retention(seeded: Seeded) -> None:
    with psycopg.connect(seeded.dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE store SET expires_at = now() - interval '1 minute', ttl_minutes = 1"
            " WHERE prefix = 'docs'"
        )
        conn.execute(
            "UPDATE checkpoints SET checkpoint = jsonb_set(checkpoint, '{ts}',"
            " '\"2020-01-01T00:00:00+00:00\"') WHERE thread_id = %s",
            (WAITING,),
        )
    data = parsed(seeded.run("sweep", "--idle-for", "30d", "--yes", "--json"))
    assert data["store_items_deleted"] == 1
    assert data["retention"]["threads_deleted"] == 1
    assert _checkpoints(seeded.dsn, WAITING) == 0
    assert _checkpoints(seeded.dsn, CHAT) == 6
