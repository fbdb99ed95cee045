"""What every table prints the same way: times (UTC, ``2026-12-05 18:29:35Z``) and counts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from checkpoint_pg.cli.ops.output import timestamp
from tests.cli.conftest import CHAT, Seeded, parsed

TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z")


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 5, 18, 29, 35, 123456, tzinfo=timezone.utc),
        datetime(2026, 12, 5, 19, 29, 35, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 12, 5, 18, 29, 35),  # naive: taken as UTC
        "2026-12-05T18:29:35.123456+00:00",  # a checkpoint's ts
    ],
)
def test_one_time_format_in_utc(value: datetime | str) -> None:
    assert timestamp(value) == "2026-12-05 18:29:35Z"


def test_agent_tools_print_times_as_the_commands_do() -> None:
    from app_data.tools.render import stamp

    moment = datetime(2026, 12, 5, 19, 29, 35, tzinfo=timezone(timedelta(hours=1)))
    assert stamp(moment) == timestamp(moment)


def _times(text: str) -> list[str]:
    return TIME.findall(text)


@pytest.mark.parametrize(
    ("command", "rows"),
    [
        (("threads",), 3),
        (("history", CHAT), 6),
        (("show", CHAT), 1),
        (("store", "search", "users"), 3),
        (("store", "get", "users.42", "prefs"), 2),
    ],
)
def test_every_command_prints_times_in_that_format(
    seeded: Seeded, command: tuple[str, ...], rows: int
) -> None:
    result = seeded.run(*command)
    assert result.exit_code == 0, result.output
    assert len(_times(result.stdout)) == rows
    assert not re.search(r"\d{2}T\d{2}:", result.stdout)  # no other ISO form
    assert "+00:00" not in result.stdout


def test_diff_labels_carry_the_same_time(seeded: Seeded) -> None:
    a, b = seeded.chat_checkpoints[-1], seeded.chat_checkpoints[0]
    result = seeded.run("diff", CHAT, a, b)
    labels = result.stdout.splitlines()[:2]
    assert [len(_times(line)) for line in labels] == [1, 1]


def test_history_says_how_many_of_how_many(seeded: Seeded) -> None:
    title = seeded.run("history", CHAT, "--limit", "2").stdout.splitlines()[0]
    assert title == f"thread {CHAT}: 2 of 6 checkpoints, newest first"
    title = seeded.run("history", CHAT).stdout.splitlines()[0]
    assert title == f"thread {CHAT}: 6 checkpoints, newest first"
    assert parsed(seeded.run("history", CHAT, "--limit", "2", "--json"))["total"] == 6
