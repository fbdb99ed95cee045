"""`python -m checkpoint_pg.cli`: the `checkpoint-pg` command."""

from checkpoint_pg.cli.main import main

main()
