"""Drive the workloads: a fresh database per participant, warm-up, then interleaved rounds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from benchmarks.environment import describe
from benchmarks.profiles import Profile
from benchmarks.workloads import WORKLOADS, resolve
from benchmarks.workloads.base import Row, Workload

__all__ = ["DatabaseSource", "SuiteResult", "interleaved", "run_suite", "server_databases"]


class DatabaseSource(Protocol):
    """Hands out fresh, empty databases on one server (`DatabaseFactory` is one)."""

    def create(self) -> str: ...

    def drop(self, dsn: str) -> None: ...


@dataclass
class SuiteResult:
    """Everything one run produced."""

    profile: Profile
    environment: dict[str, Any]
    workloads: list[Workload]
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    command: str = ""


Advance = Callable[[str], None]


def interleaved(participants: Sequence[str], turn: int) -> list[str]:
    """`participants` rotated by `turn`: each goes first as often as the others."""
    k = turn % len(participants)
    return [*participants[k:], *participants[:k]]


def _run_workload(workload: Workload, databases: DatabaseSource, advance: Advance) -> None:
    dsns: dict[str, str] = {}
    try:
        for participant in workload.participants:
            dsns[participant] = databases.create()
            workload.setup(participant, dsns[participant])
            advance(f"{workload.name}: {participant} set up")
        units = workload.units()
        for round_no in range(workload.rounds()):
            for index, unit in enumerate(units):
                turn = round_no + index
                for participant in interleaved(workload.participants_for(unit), turn):
                    workload.run(participant, unit, round_no)
                    label = f" {unit}" if unit else ""
                    advance(f"{workload.name}{label}: round {round_no + 1}, {participant}")
    finally:
        for participant in workload.participants:
            workload.teardown(participant)
        workload.finish()
        for dsn in dsns.values():
            databases.drop(dsn)


def run_suite(
    profile: Profile,
    databases: DatabaseSource,
    admin_dsn: str,
    *,
    workloads: Sequence[str] | None = None,
    progress: bool = True,
    command: str = "",
) -> SuiteResult:
    """Run `workloads` (default: all) with `profile` on databases from `databases`.

    Args:
        profile: sizes and durations.
        databases: where each participant of each workload gets its fresh database.
        admin_dsn: a DSN of the same server, to describe it in the report.
        workloads: names (or aliases) of the workloads to run, in the order given.
        progress: draw a progress bar on stderr.
        command: the command line to record in the report.
    """
    names = resolve(workloads) if workloads else list(WORKLOADS)
    chosen = [WORKLOADS[name](profile) for name in names]
    result = SuiteResult(
        profile=profile,
        environment=describe(admin_dsn),
        workloads=chosen,
        command=command,
    )
    started = time.perf_counter()
    with _progress(sum(w.steps() for w in chosen), enabled=progress) as advance:
        for workload in chosen:
            _run_workload(workload, databases, advance)
            result.rows.extend(workload.rows())
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Advance]:
    if not enabled:
        yield lambda _: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("[bold]bench[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("starting", total=total)

        def advance(description: str) -> None:
            bar.update(task, advance=1, description=description)

        yield advance


@contextmanager
def server_databases(dsn: str | None) -> Iterator[tuple[DatabaseSource, str]]:
    """Fresh databases on the server `dsn` names, or on a new embedded PostgreSQL.

    Yields the database source and the server's admin DSN; everything created is dropped
    (and the embedded server deleted) at the end.
    """
    from tests.harness import DatabaseFactory, TestServer

    stop: Callable[[], None] | None = None
    if dsn is None:
        from checkpoint_pg.cli.embedded import start_ephemeral

        embedded = start_ephemeral()
        admin, stop = embedded.dsn, embedded.stop
        server = TestServer(admin_dsn=admin, source="embedded")
    else:
        admin = dsn
        server = TestServer(admin_dsn=admin, source="env")
    factory = DatabaseFactory(server, prefix="cpgbench")
    try:
        yield factory, admin
    finally:
        try:
            factory.close()
        finally:
            if stop is not None:
                stop()
