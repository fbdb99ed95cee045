"""The run as a markdown report and as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.participants import FLOOR, IMPLEMENTATIONS, LABELS
from benchmarks.profiles import is_smoke_run
from benchmarks.runner import SuiteResult
from benchmarks.screen import SMOKE_NOTICE
from benchmarks.stats import summarize
from benchmarks.targets import evaluate

__all__ = ["legend", "markdown", "markdown_table", "targets_table", "to_json", "write_json"]

INDICATIVE = "indicative"


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def markdown_table(result: SuiteResult) -> str:
    """The results table: workload, metric, official, ours, ratio (ours/official), floor."""
    lines = [
        "| workload | metric | unit | official | ours | ratio | floor | ours ÷ floor | n |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in result.rows:
        arrow = " ↑" if row.higher_is_better else ""
        n = "/".join(str(row.n.get(p, 0)) for p in IMPLEMENTATIONS)
        lines.append(
            f"| {row.workload} | {row.metric}{arrow} | {row.unit} | {_num(row.official)}"
            f" | {_num(row.ours)} | {_ratio(row.ratio)} | {_num(row.floor)}"
            f" | {_ratio(row.ours_over_floor)} | {n} |"
        )
    return "\n".join(lines)


def legend() -> str:
    """What the table's columns mean; printed on screen too, so no one has to guess."""
    return (
        f"`official` is {LABELS['official']}, `ours` is {LABELS['checkpoint_pg']}, `floor` is "
        f"{LABELS[FLOOR]} (a single-row insert, or primary-key select, of the same bytes). "
        "ratio = ours / official: below 1 is better for times and sizes, above 1 (↑) for "
        "rates; ours ÷ floor = ours / floor. n = samples (official/ours): calls, runs, or "
        "measured windows for rates."
    )


def targets_table(result: SuiteResult) -> str:
    """The issue's targets: measured ratio, bound, verdict (indicative only on smoke runs)."""
    smoke = is_smoke_run(result.profile.name)
    met_header = f"met ({INDICATIVE}: smoke run)" if smoke else "met"
    lines = [f"| target | reads as | measured | bound | {met_header} |", "|---|---|---:|---|---|"]
    for verdict in evaluate(result.rows):
        met = {True: "yes", False: "**no**", None: "not measured"}[verdict.met]
        if smoke and verdict.met is not None:
            met = f"{met.strip('*')} ({INDICATIVE})"
        value = "n/a" if verdict.value is None else f"{verdict.value:.2f}"
        lines.append(
            f"| {verdict.target.name} | {verdict.target.reads} | {value}"
            f" | {verdict.bound} | {met} |"
        )
    return "\n".join(lines)


def _environment(result: SuiteResult) -> str:
    env = result.environment
    machine, server = env["machine"], env["server"]
    settings = ", ".join(f"{k}={v}" for k, v in sorted(server["settings"].items()))
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    return "\n".join(
        [
            f"- Machine: {machine['cores']} cores ({machine['cpu']}), "
            f"{machine['memory_gib']} GiB memory, {machine['os']}",
            f"- PostgreSQL {server['version']} over {server['transport']} ({settings})",
            f"- Python {env['python']}; {packages}; repository at "
            f"{env.get('revision') or 'unknown revision'}",
            f"- Profile `{result.profile.name}`: {result.profile.rounds} interleaved rounds "
            f"({result.profile.concurrency_rounds} for concurrency workloads), "
            f"concurrency levels {', '.join(map(str, result.profile.concurrency))}, "
            f"pool of {result.profile.pool_size}; the whole run took {result.seconds:.0f} s",
        ]
    )


def markdown(result: SuiteResult, *, plots: Sequence[tuple[str, str]] = ()) -> str:
    """The full report: how it was measured, the table, the targets, then `plots`.

    `plots` are (alt text, path) pairs, one per workload family.
    """
    parts = [f"> **Smoke run.** {SMOKE_NOTICE}", ""] if is_smoke_run(result.profile.name) else []
    parts += [
        "## Environment",
        _environment(result),
        "",
        f"Command: `{result.command}`" if result.command else "",
        "",
        "## Results",
        "",
        legend(),
        "",
        markdown_table(result),
        "",
        "## Targets",
        "",
        targets_table(result),
    ]
    if plots:
        parts += ["", "## Plots", ""]
        parts += [f"![{alt}]({path})" for alt, path in plots]
    return "\n".join(parts) + "\n"


def _distributions(result: SuiteResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for workload in result.workloads:
        for series, by_participant in workload.samples.latencies.items():
            out[f"{workload.name}: {series}"] = {
                p: summarize(values).as_dict() for p, values in by_participant.items()
            }
    return out


def _rates(result: SuiteResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for workload in result.workloads:
        for series, by_participant in workload.samples.rates.items():
            out[f"{workload.name}: {series}"] = {p: list(v) for p, v in by_participant.items()}
    return out


def to_json(result: SuiteResult) -> dict[str, Any]:
    """Everything the report shows, plus per-series percentiles and per-window rates."""
    return {
        "command": result.command,
        "seconds": result.seconds,
        "profile": result.profile.__dict__,
        "environment": result.environment,
        "rows": [row.as_dict() for row in result.rows],
        "targets": [v.as_dict() for v in evaluate(result.rows)],
        "latency_seconds": _distributions(result),
        "rates_per_window": _rates(result),
    }


def write_json(result: SuiteResult, path: Path) -> None:
    path.write_text(json.dumps(to_json(result), indent=2, default=str) + "\n")
