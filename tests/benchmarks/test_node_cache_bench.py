"""`python -m benchmarks.node_cache` runs end to end and prints its table (a smoke run)."""

from __future__ import annotations

from benchmarks.node_cache import main


def test_the_node_cache_benchmark_prints_a_row_per_measure(dsn: str) -> None:
    lines: list[str] = []
    argv = ["--dsn", dsn, "--entries", "50", "--rounds", "1", "--samples", "2"]
    assert main(argv, out=lines.append) == 0
    assert [line[:28].strip() for line in lines[2:-1]] == [
        "get 1 key",
        "get 10 keys",
        "set 1 entry",
        "set 10 entries",
        "graph: miss (node runs)",
        "graph: hit (node skipped)",
    ]
