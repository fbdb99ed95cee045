"""What a newcomer sees: the legend, smoke-run banners, indicative verdicts, and the plots.

Structure only: which texts appear where, which files are written, what the axes contain.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from benchmarks.cli import main as bench_main
from benchmarks.participants import FLOOR, OFFICIAL, OURS
from benchmarks.plotdata import FAMILIES, LatencyPanel, RatePanel, Spread, figures
from benchmarks.plots import draw, latency_top, write_plots
from benchmarks.profiles import FULL
from benchmarks.report import markdown, targets_table, to_json, write_json
from benchmarks.runner import SuiteResult
from tests.harness import TestServer

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(smoke_result: SuiteResult) -> dict[str, Any]:
    """The smoke run as its --json file holds it."""
    data: dict[str, Any] = json.loads(json.dumps(to_json(smoke_result), default=str))
    return data


def _titles(ax: Any) -> str:
    return str(ax.get_title()).replace("\n", " ")


def test_quick_run_screen_has_legend_banners_indicative_verdicts_and_pointer(
    pg_server: TestServer, tmp_path: Path
) -> None:
    md = tmp_path / "bench.md"
    args = ["--dsn", pg_server.admin_dsn, "--profile", "smoke", "--workloads", "put"]
    args += ["--markdown", str(md), "--no-progress"]
    result = CliRunner().invoke(bench_main, args)
    assert result.exit_code == 0, result.output
    out = result.output
    start, end = out.index("SMOKE RUN (start)"), out.index("SMOKE RUN (end)")
    legend, table = out.index("Legend: `official` is"), out.index("| workload | metric |")
    targets = out.index("| target | reads as |")
    assert start < legend < table < targets < end < out.index("benchmarks/RESULTS.md")
    assert "met (indicative: smoke run)" in out
    verdicts = [line for line in out.splitlines() if line.startswith("| put 1 KB p50 |")]
    assert verdicts
    assert verdicts[0].endswith("(indicative) |")
    assert "**Smoke run.**" in md.read_text()


def test_full_runs_give_plain_verdicts(smoke_result: SuiteResult) -> None:
    full = replace(smoke_result, profile=FULL)
    table = targets_table(full)
    assert "| met |" in table
    assert "indicative" not in table
    assert "Smoke run" not in markdown(full)
    assert "indicative" in targets_table(smoke_result)


def test_plot_titles_are_the_table_labels(smoke_result: SuiteResult, saved: dict[str, Any]) -> None:
    metrics = {row.metric for row in smoke_result.rows}
    for figure in figures(saved):
        drawn = draw(figure)
        for ax, panel in zip(drawn.axes, figure.panels, strict=False):
            assert _titles(ax) == panel.title
            if isinstance(panel, LatencyPanel):
                assert {f"{panel.title}, p50", f"{panel.title} p50"} & metrics, panel.title
            else:
                for participant_points in panel.lines.values():
                    for level, _ in participant_points:
                        label = re.sub(r"\bN\b", str(level), panel.title, count=1)
                        assert label in metrics, label


def test_one_png_per_workload_family(saved: dict[str, Any], tmp_path: Path) -> None:
    paths = write_plots(saved, tmp_path / "out.png")
    families = {family for family, _ in FAMILIES.values()}
    assert {p.name for p in paths} == {f"out-{family}.png" for family in families}
    assert all(p.stat().st_size > 0 for p in paths)


def test_y_limits_contain_the_data(saved: dict[str, Any]) -> None:
    for figure in figures(saved):
        drawn = draw(figure)
        for ax, panel in zip(drawn.axes, figure.panels, strict=False):
            bottom, top = ax.get_ylim()
            if isinstance(panel, RatePanel):
                values = [v for points in panel.lines.values() for _, r in points for v in r]
                assert bottom <= min(values)
                assert max(values) <= top, panel.title
                continue
            notes = ax.get_xlabel()
            for spread in panel.spreads:
                assert bottom <= spread.minimum
                assert spread.p99 <= top, panel.title
                assert spread.maximum <= top or "off scale" in notes, panel.title


def test_a_far_maximum_is_written_not_clipped_silently() -> None:
    near = Spread(OFFICIAL, 1.0, 2.0, 3.0, 4.0, 5.0)
    far = Spread(OURS, 1.0, 2.0, 3.0, 4.0, 400.0)
    top, cut = latency_top((near, far))
    assert cut == [far]
    assert 5.0 <= top < 400.0
    panel = LatencyPanel("put, 1 KB channel value", (near, far, replace(near, participant=FLOOR)))
    from benchmarks.plotdata import Figure

    drawn = draw(Figure("writes", "Writes", (panel,)))
    assert drawn.axes[0].get_xlabel() == "off scale: ours max 400 ms"


def test_files_saved_before_rows_named_their_series_plot_the_same(saved: dict[str, Any]) -> None:
    old = json.loads(json.dumps(saved))
    for row in old["rows"]:
        row.pop("series")
        row.pop("floor_series")
    assert figures(old) == figures(saved)


def test_the_committed_results_replot(tmp_path: Path) -> None:
    for name in ("results.json", "results-pg15.json"):
        data = json.loads((REPOSITORY / "benchmarks" / name).read_text())
        assert {f.family for f in figures(data)} == {family for family, _ in FAMILIES.values()}


def test_plot_from_redraws_a_saved_run_without_running(
    smoke_result: SuiteResult, tmp_path: Path
) -> None:
    saved_file = tmp_path / "run.json"
    write_json(smoke_result, saved_file)
    args = ["--plot-from", str(saved_file), "--plot", str(tmp_path / "again.png")]
    result = CliRunner().invoke(bench_main, args)
    assert result.exit_code == 0, result.output
    assert "PostgreSQL:" not in result.output
    assert (tmp_path / "again-reads.png").is_file()
    beside = CliRunner().invoke(bench_main, ["--plot-from", str(saved_file)])
    assert beside.exit_code == 0, beside.output
    assert (tmp_path / "run-store.png").is_file()
