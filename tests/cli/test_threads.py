"""threads and prune, over the savers' retention API."""

from __future__ import annotations

from datetime import timedelta

import click
import psycopg
import pytest

from checkpoint_pg.cli.ops.common import parse_duration
from tests.cli.conftest import CHAT, NESTED, WAITING, Seeded, parsed
from tests.cli.terminal import on_terminal


def _make_idle(dsn: str, thread_id: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE checkpoints SET checkpoint = jsonb_set(checkpoint, '{ts}',"
            " '\"2020-01-01T00:00:00+00:00\"') WHERE thread_id = %s",
            (thread_id,),
        )


def _thread_ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}


def test_threads_table_lists_every_thread(seeded: Seeded) -> None:
    result = seeded.run("threads", "--full")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert set(rows) == {CHAT, NESTED, WAITING}
    assert rows[CHAT][1] == seeded.chat_checkpoints[0]
    assert rows[CHAT][4] == "6"  # the time is two words: 2026-12-05 18:29:35Z


def test_threads_json_pages_with_next_after(seeded: Seeded) -> None:
    first = parsed(seeded.run("threads", "--json", "--limit", "2"))
    assert [t["thread_id"] for t in first["threads"]] == [CHAT, NESTED]
    assert first["next_after"] == NESTED
    assert {"latest_checkpoint_id", "latest_ts", "checkpoints", "bytes", "metadata"} <= set(
        first["threads"][0]
    )
    rest = parsed(seeded.run("threads", "--json", "--limit", "2", "--after", NESTED))
    assert [t["thread_id"] for t in rest["threads"]] == [WAITING]
    assert rest["next_after"] is None
    every = parsed(seeded.run("threads", "--json", "--limit", "1", "--all"))
    assert len(every["threads"]) == 3


def test_threads_idle_for_keeps_only_idle_threads(seeded: Seeded) -> None:
    _make_idle(seeded.dsn, WAITING)
    data = parsed(seeded.run("threads", "--json", "--idle-for", "7d"))
    assert [t["thread_id"] for t in data["threads"]] == [WAITING]


def test_prune_dry_run_deletes_nothing(seeded: Seeded) -> None:
    _make_idle(seeded.dsn, WAITING)
    data = parsed(
        seeded.run("prune", "--idle-days", "7", "--keep-latest", "1", "--dry-run", "--json")
    )
    assert data["dry_run"] is True
    assert (data["threads_deleted"], data["threads_pruned"]) == (1, 2)
    # waiting 2; chat 6 -> 1; nested: root 3 -> 1, its finished subgraph call 3 -> 0
    assert data["checkpoints_deleted"] == 2 + 5 + 2 + 3
    assert _thread_ids(seeded.dsn) == {CHAT, NESTED, WAITING}


def test_prune_idle_threads(seeded: Seeded) -> None:
    _make_idle(seeded.dsn, WAITING)
    data = parsed(seeded.run("prune", "--idle-for", "7d", "--yes", "--json"))
    assert data["threads_deleted"] == 1
    assert data["policy"]["idle_for_s"] == 7 * 86400
    assert _thread_ids(seeded.dsn) == {CHAT, NESTED}


def test_prune_keep_latest_leaves_the_latest_checkpoint(seeded: Seeded) -> None:
    result = seeded.run("prune", "--keep-latest", "1", "--yes")
    assert result.exit_code == 0
    assert "checkpoint(s)" in result.stdout
    history = parsed(seeded.run("history", CHAT, "--json"))["checkpoints"]
    assert next(c["checkpoint_id"] for c in history) == seeded.chat_checkpoints[0]
    assert len(history) < 6


def test_prune_asks_for_confirmation(seeded: Seeded) -> None:
    result = on_terminal("prune", "--keep-latest", "1", answer="n", dsn=seeded.dsn)
    assert result.exit_code == 1
    assert "Keep only the newest 1 checkpoint(s)" in result.stderr
    assert len(parsed(seeded.run("history", CHAT, "--json"))["checkpoints"]) == 6


def test_prune_without_a_policy_is_a_usage_error(seeded: Seeded) -> None:
    result = seeded.run("prune", "--yes")
    assert result.exit_code == 2
    assert "--keep-latest" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "0d", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)
