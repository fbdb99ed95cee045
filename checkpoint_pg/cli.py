"""The `checkpoint-pg` command."""

from __future__ import annotations

import sys
from typing import Any

import click

from benchmarks.cli import bench_options
from checkpoint_pg.connection import DSN_ENV_VAR, InvalidDSNError, mask_dsn, validate_dsn
from checkpoint_pg.ops import register
from checkpoint_pg.ops.common import EXIT_CODES_HELP, schema_option, translated_errors

__all__ = ["main"]

_dsn_option = click.option(
    "--dsn",
    envvar=DSN_ENV_VAR,
    default=None,
    help=f"PostgreSQL DSN (or ${DSN_ENV_VAR}); default: the embedded PostgreSQL.",
)


def _checked(dsn: str | None) -> str | None:
    if dsn is None:
        return None
    try:
        validate_dsn(dsn)
    except InvalidDSNError as exc:
        raise click.BadParameter(str(exc), param_hint="--dsn") from None
    return dsn


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """PostgreSQL persistence for LangGraph agents."""


@main.command()
@_dsn_option
@click.option("--phase", type=click.Choice(["start", "resume"]), default=None, hidden=True)
@click.option("--thread", "thread_id", default=None, hidden=True)
@click.option("--user-id", default=None, hidden=True)
@click.option("--project-id", default=None, hidden=True)
def demo(
    dsn: str | None,
    phase: str | None,
    thread_id: str | None,
    user_id: str | None,
    project_id: str | None,
) -> None:
    """Run an agent with project tools, kill it at an approval, resume it in a new process."""
    from checkpoint_pg.demo import DemoError, run_demo, run_phase

    try:
        if phase is None:
            run_demo(_checked(dsn), say=click.echo)
            return
        # One of the demo's own agent processes (started by run_demo, DSN in the environment).
        if not (dsn and thread_id and user_id and project_id):
            raise click.UsageError("--phase needs a DSN, --thread, --user-id and --project-id")
        run_phase(phase, dsn, thread_id, user_id, project_id, say=click.echo)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@_dsn_option
@schema_option
def setup(dsn: str | None, schema: str | None) -> None:
    """Create or migrate the checkpoint and store tables (all migrations)."""
    from checkpoint_pg.demo import database
    from checkpoint_pg.ops.common import connect
    from checkpoint_pg.saver import PostgresSaver
    from store.sync import PostgresStore

    with database(_checked(dsn), click.echo) as url, translated_errors(url), connect(url) as conn:
        PostgresSaver(conn, schema=schema).setup()
        PostgresStore(conn, schema=schema).setup()
    click.echo(f"checkpoint and store tables are ready ({mask_dsn(url)})")


@main.command()
@_dsn_option
@bench_options
def bench(dsn: str | None, **options: Any) -> None:
    """Benchmark against langgraph-checkpoint-postgres, side by side on one server."""
    from benchmarks.cli import run_bench

    run_bench(_checked(dsn), **options)


register(main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
