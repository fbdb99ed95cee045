"""``python -m benchmarks``: the same command as ``checkpoint-pg bench``."""

from benchmarks.cli import main

main(prog_name="python -m benchmarks")
