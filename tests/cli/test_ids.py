"""Checkpoint ids as people copy them: tables print short unique prefixes, commands take them."""

from __future__ import annotations

import re

from tests.cli.conftest import CHAT, Seeded, parsed

ID_PREFIX = re.compile(r"^[0-9a-f][0-9a-f-]{7,35}$")


def _history_ids(seeded: Seeded, *args: str) -> list[str]:
    result = seeded.run("history", CHAT, *args)
    assert result.exit_code == 0, result.output
    return [line.split()[0] for line in result.stdout.splitlines()[3:]]


def test_history_prints_the_shortest_unique_prefix_of_at_least_8_characters(
    seeded: Seeded,
) -> None:
    shown = _history_ids(seeded)
    assert len(shown) == len(seeded.chat_checkpoints)
    for short, full in zip(shown, seeded.chat_checkpoints, strict=True):
        assert ID_PREFIX.match(short)
        assert full.startswith(short)
        assert len(short) < len(full)
        others = [other for other in seeded.chat_checkpoints if other != full]
        assert not any(other.startswith(short) for other in others)  # unique
        assert any(other.startswith(short[:-1]) for other in others) or len(short) == 8  # shortest


def test_full_and_json_print_whole_ids(seeded: Seeded) -> None:
    assert _history_ids(seeded, "--full") == seeded.chat_checkpoints
    data = parsed(seeded.run("history", CHAT, "--json"))
    assert [c["checkpoint_id"] for c in data["checkpoints"]] == seeded.chat_checkpoints


def test_threads_prints_the_short_id_of_the_latest_checkpoint(seeded: Seeded) -> None:
    result = seeded.run("threads")
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith(CHAT))
    assert seeded.chat_checkpoints[0].startswith(row[1])
    assert len(row[1]) < len(seeded.chat_checkpoints[0])


def test_show_and_diff_take_the_short_ids_history_prints(seeded: Seeded) -> None:
    newest, oldest = _history_ids(seeded)[0], _history_ids(seeded)[-1]
    shown = parsed(seeded.run("show", CHAT, newest, "--json"))
    assert shown["checkpoint_id"] == seeded.chat_checkpoints[0]
    diff = parsed(seeded.run("diff", CHAT, oldest, newest, "--json"))
    assert diff["a"]["checkpoint_id"] == seeded.chat_checkpoints[-1]
    assert diff["b"]["checkpoint_id"] == seeded.chat_checkpoints[0]


def test_history_before_takes_a_prefix(seeded: Seeded) -> None:
    second = _history_ids(seeded)[1]
    data = parsed(seeded.run("history", CHAT, "--before", second, "--json"))
    assert [c["checkpoint_id"] for c in data["checkpoints"]] == seeded.chat_checkpoints[2:]


def test_an_ambiguous_prefix_is_a_usage_error_listing_the_candidates(seeded: Seeded) -> None:
    common = seeded.chat_checkpoints[0][:4]  # ids of one thread start alike (time-ordered)
    assert all(cid.startswith(common) for cid in seeded.chat_checkpoints)
    result = seeded.run("show", CHAT, common)
    assert result.exit_code == 2
    assert "ambiguous" in result.stderr
    for candidate in seeded.chat_checkpoints:
        assert candidate in result.stderr


def test_a_prefix_nothing_starts_with_is_not_found(seeded: Seeded) -> None:
    result = seeded.run("show", CHAT, "ffff")
    assert result.exit_code == 3
    assert "no checkpoint ffff in thread chat-1" in result.stderr


def test_a_prefix_needs_4_characters(seeded: Seeded) -> None:
    result = seeded.run("show", CHAT, seeded.chat_checkpoints[0][:3])
    assert result.exit_code == 2
    assert "at least 4 characters" in result.stderr
