"""The `checkpoint-pg` command."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import click

from checkpoint_pg._runtime.dsn import DSN_ENV_VAR, InvalidDSNError, mask_dsn, validate_dsn
from checkpoint_pg._runtime.extras import require
from checkpoint_pg.cli.ops import register
from checkpoint_pg.cli.ops.common import EXIT_CODES_HELP, schema_option, translated_errors
from checkpoint_pg.cli.ops.target import MissingExtra, embedded_option, wanted_dsn
from checkpoint_pg.errors import ConnectionFailedError, MissingExtraError

__all__ = ["main"]

_dsn_option = click.option(
    "--dsn",
    envvar=DSN_ENV_VAR,
    default=None,
    help=f"PostgreSQL DSN (or ${DSN_ENV_VAR}); default: the embedded PostgreSQL.",
)


def _requiring(what: str, extra: str, *needs: str) -> None:
    try:
        require(what, extra, needs=needs or None)
    except MissingExtraError as exc:
        raise MissingExtra(str(exc)) from None


def _checked(dsn: str | None) -> str | None:
    if dsn is None:
        return None
    try:
        validate_dsn(dsn)
    except InvalidDSNError as exc:
        raise click.BadParameter(str(exc), param_hint="--dsn") from None
    return dsn


def _version() -> str:
    try:
        return metadata.version("checkpoint-pg")
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


class _Commands(click.Group):
    """The command group; ``bench`` is loaded from the repository checkout only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "bench"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "bench":
            return _bench_command()
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_Commands,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(_version(), "--version", "-V", prog_name="checkpoint-pg")
def main() -> None:
    """PostgreSQL persistence for LangGraph agents."""


@main.command()
@_dsn_option
@embedded_option
@click.option("--phase", type=click.Choice(["start", "resume"]), default=None, hidden=True)
@click.option("--thread", "thread_id", default=None, hidden=True)
@click.option("--user-id", default=None, hidden=True)
@click.option("--project-id", default=None, hidden=True)
def demo(
    dsn: str | None,
    embedded: bool,
    phase: str | None,
    thread_id: str | None,
    user_id: str | None,
    project_id: str | None,
) -> None:
    """Run an agent with project tools, kill it at an approval, resume it in a new process."""
    dsn = wanted_dsn(dsn, embedded)
    _requiring("checkpoint-pg demo", "demo", "app", "deepagents", *(() if dsn else ("embedded",)))
    from app_data.errors import MigrationError
    from checkpoint_pg.cli.demo import DemoError, run_demo, run_phase

    try:
        if phase is None:
            run_demo(_checked(dsn), say=click.echo)
            return
        # One of the demo's own agent processes (started by run_demo, DSN in the environment).
        if not (dsn and thread_id and user_id and project_id):
            raise click.UsageError("--phase needs a DSN, --thread, --user-id and --project-id")
        run_phase(phase, dsn, thread_id, user_id, project_id, say=click.echo)
    except (DemoError, ConnectionFailedError, MigrationError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@_dsn_option
@embedded_option
@schema_option
@click.option(
    "--distributed",
    is_flag=True,
    help="On Citus: then shard the checkpoint tables by thread_id and the store's by prefix.",
)
def setup(dsn: str | None, embedded: bool, schema: str | None, distributed: bool) -> None:
    """Create or migrate the checkpoint, store and node-cache tables (all migrations)."""
    dsn = wanted_dsn(dsn, embedded)
    from checkpoint_pg.cache import PostgresCache
    from checkpoint_pg.cli.embedded import dsn_or_embedded
    from checkpoint_pg.cli.ops.common import connect
    from checkpoint_pg.sync import PostgresSaver
    from store.sync import PostgresStore

    if dsn is None:
        _requiring("checkpoint-pg setup without --dsn (the embedded PostgreSQL)", "embedded")
    with (
        translated_errors(dsn),
        dsn_or_embedded(_checked(dsn), click.echo) as url,
        connect(url) as conn,
    ):
        PostgresSaver(conn, schema=schema).setup(distributed=distributed)
        PostgresStore(conn, schema=schema).setup(distributed=distributed)
        # The node cache stays a plain table (on Citus, the coordinator's): it is not per thread.
        PostgresCache(conn, schema=schema).setup()
    sharded = ", distributed on Citus" if distributed else ""
    click.echo(f"checkpoint, store and node-cache tables are ready{sharded} ({mask_dsn(url)})")


def _benchmarks_checkout() -> Path | None:
    """The repository checkout this package runs from, if it has the benchmarks beside it."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "benchmarks" / "cli.py").is_file() else None


_BENCH_HELP = (
    "Benchmark against langgraph-checkpoint-postgres, side by side on one server "
    "(a repository tool: run it from a checkout installed with the 'bench' extra)."
)
_NO_CHECKOUT = (
    "checkpoint-pg bench is a repository tool: run it from a checkout of checkpoint-pg "
    "installed with pip install -e '.[bench]' (or python -m benchmarks there)"
)


def _unavailable(message: str) -> click.Command:
    """A ``bench`` that only says why it cannot run (any arguments accepted, exit code 2)."""

    def refuse() -> None:
        raise MissingExtra(message)

    return click.Command(
        "bench",
        callback=refuse,
        help=_BENCH_HELP,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def _bench_command() -> click.Command:
    """The benchmark command of the checkout, or one that says how to get it."""
    root = _benchmarks_checkout()
    if root is None:
        return _unavailable(_NO_CHECKOUT)
    try:
        require("checkpoint-pg bench", "bench")
    except MissingExtraError as exc:
        return _unavailable(str(exc))
    if str(root) not in sys.path:
        sys.path.append(str(root))
    from benchmarks.cli import main as bench

    return bench


register(main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
