"""The application surface: the `checkpoint-pg` command, its operator commands, the demo and
the embedded PostgreSQL it can run on. The only layer that imports across packages."""

from checkpoint_pg.cli.main import main

__all__ = ["main"]
