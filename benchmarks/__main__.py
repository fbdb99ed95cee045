"""``python -m benchmarks``: the same command as ``checkpoint-pg bench``."""

import sys

from checkpoint_pg._runtime.extras import require
from checkpoint_pg.errors import MissingExtraError

try:
    require("python -m benchmarks", "bench")
except MissingExtraError as exc:
    print(f"Error: {exc}", file=sys.stderr)
    sys.exit(2)

from benchmarks.cli import main

main(prog_name="python -m benchmarks")
