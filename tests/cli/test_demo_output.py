"""What the demo prints for an operator: tool results with their first lines, and at the end
the commands that show what it wrote."""

from __future__ import annotations

from checkpoint_pg.cli.demo import _short, next_steps
from tests.cli.conftest import invoke

GAME = "src/game.py (18 lines, 406 B):\n" + "\n".join(f"line {n}" for n in range(1, 19))


def test_a_file_read_shows_its_first_lines_and_counts_the_rest() -> None:
    assert _short(GAME) == "src/game.py (18 lines, 406 B): | line 1 | line 2  (+16 more lines)"


def test_short_results_are_shown_whole_on_one_line() -> None:
    assert _short("ok\n\nsaved src/a.py") == "ok | saved src/a.py"
    assert _short("one\ntwo\nthree\nfour") == "one | two | three  (+1 more line)"


def test_the_next_steps_use_the_server_the_demo_used() -> None:
    assert next_steps("demo-1234", None) == [
        "checkpoint-pg threads --embedded",
        "checkpoint-pg history demo-1234 --embedded",
        "checkpoint-pg show demo-1234 --embedded",
    ]
    dsn = "postgresql://app:s3cret@db:5432/agents"
    steps = next_steps("demo-1234", dsn)
    assert all("--dsn '" in step for step in steps)
    assert not any("s3cret" in step for step in steps)


def test_the_next_steps_are_real_commands() -> None:
    for step in next_steps("demo-1234", None):
        args = step.split()[1:]
        result = invoke(*args, "--help")
        assert result.exit_code == 0, (step, result.output)
