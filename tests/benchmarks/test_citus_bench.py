"""`python -m benchmarks.citus` runs end to end and prints its table (a smoke run, no verdict)."""

from __future__ import annotations

from benchmarks.citus import main


def test_the_citus_benchmark_prints_a_row_per_measure(dsn: str, citus_dsn: str) -> None:
    lines: list[str] = []
    argv = ["--single", dsn, "--citus", citus_dsn, "--rounds", "1", "--samples", "2"]
    assert main([*argv, "--seconds", "0.6"], out=lines.append) == 0
    table = lines[0].splitlines()
    assert [row.split("|")[1].strip() for row in table[2:]] == [
        "put p50",
        "get_tuple p50",
        "list p50",
        "32 concurrent runs",
    ]
