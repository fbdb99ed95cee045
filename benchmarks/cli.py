"""Command-line entry: ``checkpoint-pg bench`` and ``python -m benchmarks`` share these options."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from checkpoint_pg._runtime.dsn import DSN_ENV_VAR, mask_dsn

__all__ = ["bench_options", "main", "run_bench"]

F = TypeVar("F", bound=Callable[..., Any])


def _levels(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        levels = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter("give comma-separated integers, e.g. 1,8,32") from None
    if not levels or any(n < 1 for n in levels):
        raise click.BadParameter("concurrency levels must be positive integers")
    return levels


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    from benchmarks.workloads import resolve

    try:
        return tuple(resolve([v for v in value.split(",") if v.strip()]))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def bench_options(func: F) -> F:
    """Every option of the bench command except ``--dsn``."""
    options = [
        click.option(
            "--quick",
            is_flag=True,
            help="Small sizes and short windows (about 60 s): a smoke run, not a verdict.",
        ),
        click.option(
            "--profile",
            "profile_name",
            type=click.Choice(["full", "quick", "smoke"]),
            default=None,
            hidden=True,
            help="Sizes to use (smoke: the test suite's).",
        ),
        click.option(
            "--workloads",
            callback=_names,
            help="Comma-separated workloads (default: all): put, put_writes, reads, agent, "
            "saver_concurrency, agent_concurrency, defaults, store, memory.",
        ),
        click.option(
            "--concurrency",
            callback=_levels,
            help="Comma-separated concurrency levels (default: 1,8,32).",
        ),
        click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write JSON."),
        click.option(
            "--plot",
            "plot_path",
            type=click.Path(path_type=Path),
            help="Write one PNG per workload family: PATH-<family>.png (a .png suffix on "
            "PATH is dropped). Without --json, also saves PATH.json for --plot-from.",
        ),
        click.option(
            "--plot-from",
            "plot_from",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Redraw the plots from a saved --json file instead of running "
            "(to --plot's PATH, default: beside the file).",
        ),
        click.option(
            "--markdown",
            "markdown_path",
            type=click.Path(path_type=Path),
            help="Write the full markdown report (environment, table, targets).",
        ),
        click.option("--progress/--no-progress", default=True, help="Draw a progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _command(dsn: str | None, options: dict[str, Any]) -> str:
    parts = ["checkpoint-pg bench"]
    if dsn:
        parts.append(f"--dsn '{mask_dsn(dsn)}'")
    if options.get("quick"):
        parts.append("--quick")
    if options.get("profile_name"):
        parts.append(f"--profile {options['profile_name']}")
    if options.get("workloads"):
        parts.append(f"--workloads {','.join(options['workloads'])}")
    if options.get("concurrency"):
        parts.append(f"--concurrency {','.join(map(str, options['concurrency']))}")
    for flag in ("json", "plot", "markdown"):
        if path := options.get(f"{flag}_path"):
            parts.append(f"--{flag} {path}")
    return " ".join(parts)


def run_bench(
    dsn: str | None,
    *,
    quick: bool = False,
    profile_name: str | None = None,
    workloads: tuple[str, ...] = (),
    concurrency: tuple[int, ...] = (),
    json_path: Path | None = None,
    plot_path: Path | None = None,
    markdown_path: Path | None = None,
    plot_from: Path | None = None,
    progress: bool = True,
    say: Callable[[str], None] = click.echo,
) -> None:
    """Run the suite on `dsn`'s server (None: a new embedded PostgreSQL) and report.

    With `plot_from`, only redraw the plots of that saved run.
    """
    from benchmarks.profiles import PROFILES, is_smoke_run
    from benchmarks.runner import run_suite, server_databases
    from benchmarks.screen import RESULTS_POINTER, smoke_banner, wrapped

    if plot_from is not None:
        _write_plots(json.loads(plot_from.read_text()), plot_path or plot_from.with_suffix(""), say)
        return

    options = {
        "quick": quick,
        "profile_name": profile_name,
        "workloads": workloads,
        "concurrency": concurrency,
        "json_path": json_path,
        "plot_path": plot_path,
        "markdown_path": markdown_path,
    }
    profile = PROFILES[profile_name or ("quick" if quick else "full")]
    profile = profile.with_concurrency(concurrency or None)
    smoke = is_smoke_run(profile.name)
    if smoke:
        say(smoke_banner("start"))
    say(f"PostgreSQL: {mask_dsn(dsn) if dsn else 'embedded PostgreSQL 18 (ephemeral)'}")
    with server_databases(dsn) as (databases, admin_dsn):
        result = run_suite(
            profile,
            databases,
            admin_dsn,
            workloads=list(workloads) or None,
            progress=progress,
            command=_command(dsn, options),
        )
    _report(result, json_path=json_path, plot_path=plot_path, markdown_path=markdown_path, say=say)
    if smoke:
        say(smoke_banner("end"))
    say(wrapped(RESULTS_POINTER))


def _report(
    result: Any,
    *,
    json_path: Path | None,
    plot_path: Path | None,
    markdown_path: Path | None,
    say: Callable[[str], None],
) -> None:
    """The legend and tables on screen, then the files asked for (JSON, plots, markdown)."""
    from benchmarks.report import (
        legend,
        markdown,
        markdown_table,
        targets_table,
        to_json,
        write_json,
    )
    from benchmarks.screen import wrapped

    say(wrapped(f"Legend: {legend()}"))
    say("")
    say(markdown_table(result))
    say("")
    say(targets_table(result))
    if plot_path and not json_path:
        json_path = plot_path.with_suffix(".json")
    if json_path:
        write_json(result, json_path)
        say(f"JSON: {json_path} (redraw the plots with --plot-from {json_path})")
    plots: list[Path] = []
    if plot_path:
        plots = _write_plots(to_json(result), plot_path, say)
    if markdown_path:
        pairs = [(path.stem, _relative(path, markdown_path.parent)) for path in plots]
        markdown_path.write_text(markdown(result, plots=pairs))
        say(f"report: {markdown_path}")


def _relative(path: Path, start: Path) -> str:
    try:
        return str(path.resolve().relative_to(start.resolve()))
    except ValueError:
        return str(path)


def _write_plots(data: dict[str, Any], prefix: Path, say: Callable[[str], None]) -> list[Path]:
    from benchmarks.plots import write_plots

    paths = write_plots(data, prefix)
    for path in paths:
        say(f"plot: {path}")
    return paths


@click.command(name="bench")
@click.option(
    "--dsn",
    envvar=DSN_ENV_VAR,
    default=None,
    help=f"PostgreSQL DSN of a server to create databases on (or ${DSN_ENV_VAR}); "
    "default: an embedded PostgreSQL 18.",
)
@bench_options
def main(dsn: str | None, **options: Any) -> None:
    """Benchmark checkpoint-pg against langgraph-checkpoint-postgres, side by side."""
    from checkpoint_pg._runtime.dsn import InvalidDSNError, validate_dsn
    from checkpoint_pg._runtime.sync import probe
    from checkpoint_pg.errors import ConnectionFailedError

    if dsn is not None:
        try:
            validate_dsn(dsn)
        except InvalidDSNError as exc:
            raise click.BadParameter(str(exc), param_hint="--dsn") from None
        try:
            probe(dsn)  # a wrong DSN: one line saying why, before anything runs
        except ConnectionFailedError as exc:
            raise click.ClickException(str(exc)) from None
    run_bench(dsn, **options)
