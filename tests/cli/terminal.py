"""Running `checkpoint-pg` on a real terminal: a child process whose stdin is a pseudo-terminal.

`CliRunner` feeds stdin from a buffer, which is not a terminal; this is how the tests answer a
confirmation the way a person at a terminal does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Finished:
    exit_code: int
    stdout: str
    stderr: str


def on_terminal(*args: str, answer: str, dsn: str) -> Finished:
    """Run ``checkpoint-pg ARGS --dsn DSN`` with a terminal on stdin, typing `answer` + Enter."""
    controller, terminal = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CHECKPOINT_PG_DSN"}
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "checkpoint_pg.cli", *args, "--dsn", dsn],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(terminal)
        os.write(controller, answer.encode() + b"\n")
        stdout, stderr = child.communicate(timeout=60)
    finally:
        os.close(controller)
    return Finished(child.returncode, stdout.decode(), stderr.decode())
