"""One PNG per workload family, drawn from the saved results (the ``--json`` dict).

Panel titles are the results table's labels, so a panel can be found in the table; y-axes
start at 0 and reach past every whisker; a maximum far above the rest is written in the
panel instead of squashing it.
"""

from __future__ import annotations

import io
import math
import statistics
import textwrap
from pathlib import Path
from typing import Any

from benchmarks.participants import FLOOR, OFFICIAL, OURS
from benchmarks.plotdata import Figure, LatencyPanel, RatePanel, Spread, figures

__all__ = ["GLYPH", "RATE_GLYPH", "draw", "latency_top", "plot_paths", "write_plots"]

_COLORS = {OFFICIAL: "#d62728", OURS: "#1f77b4", FLOOR: "#7f7f7f"}
_NAMES = {OFFICIAL: "official", OURS: "ours", FLOOR: "floor"}
_COLS = 4
# A maximum beyond this many times the highest p99 is written, not drawn.
_OUTLIER_FACTOR = 2.0

GLYPH = "latency per call, ms: bar from p50 (black line) to p90, whisker min to p99, x max"
RATE_GLYPH = "throughput: median of the measured windows, error bars min to max"


def latency_top(spreads: tuple[Spread, ...]) -> tuple[float, list[Spread]]:
    """The y-axis top for `spreads`, and the spreads whose maximum lies above it."""
    p99 = max(s.p99 for s in spreads)
    top = max(p99 * 1.12, 1e-3)  # never an empty axis, even if every call took 0 ms
    for spread in spreads:
        if spread.maximum <= _OUTLIER_FACTOR * p99:
            top = max(top, spread.maximum * 1.06)
    return top, [s for s in spreads if s.maximum > top]


def _latency(ax: Any, panel: LatencyPanel) -> None:
    top, cut = latency_top(panel.spreads)
    for x, s in enumerate(panel.spreads):
        color = _COLORS[s.participant]
        ax.vlines(x, s.minimum, s.p99, color=color, linewidth=1)
        ax.bar(x, s.p90 - s.p50, bottom=s.p50, width=0.5, color=color, alpha=0.6)
        ax.hlines(s.p50, x - 0.25, x + 0.25, color="black", linewidth=1.5)
        if s not in cut:
            ax.plot(x, s.maximum, marker="x", color=color, markersize=5)
    ax.set_xticks(range(len(panel.spreads)), [_NAMES[s.participant] for s in panel.spreads])
    ax.set_xlim(-0.6, len(panel.spreads) - 0.4)
    ax.set_ylim(0, top)
    ax.set_ylabel("ms", fontsize=7)
    if cut:
        note = "; ".join(f"{_NAMES[s.participant]} max {s.maximum:.3g} ms" for s in cut)
        ax.set_xlabel(f"off scale: {note}", fontsize=7)


def _rates(ax: Any, panel: RatePanel) -> None:
    for participant in (OFFICIAL, OURS):
        points = sorted(panel.lines.get(participant, []))
        if not points:
            continue
        xs = [n for n, _ in points]
        mids = [statistics.median(r) for _, r in points]
        low = [m - min(r) for m, (_, r) in zip(mids, points, strict=True)]
        high = [max(r) - m for m, (_, r) in zip(mids, points, strict=True)]
        ax.errorbar(
            xs,
            mids,
            yerr=[low, high],
            marker="o",
            capsize=3,
            color=_COLORS[participant],
            label=_NAMES[participant],
        )
    levels = sorted({n for points in panel.lines.values() for n, _ in points})
    highest = max(max(r) for points in panel.lines.values() for _, r in points)
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(n) for n in levels])
    ax.minorticks_off()
    ax.set_xlabel("concurrency (N)", fontsize=7)
    ax.set_ylabel(panel.unit, fontsize=7)
    ax.set_ylim(0, highest * 1.1)
    ax.legend(fontsize=7)


def _columns(panels: int) -> int:
    """3 or 4 columns, whichever leaves fewer empty cells (4 on a tie); fewer panels: one row."""
    if panels <= 4:
        return panels
    return min((4, 3), key=lambda cols: -panels % cols)


def draw(figure: Figure) -> Any:
    """`figure` as a matplotlib figure (the caller saves and closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = _columns(len(figure.panels))
    rows = math.ceil(len(figure.panels) / cols)
    width = max(3.4 * cols, 7.0)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width, 2.9 * rows + 0.8), dpi=72, layout="constrained", squeeze=False
    )
    for ax, panel in zip(axes.flat, figure.panels, strict=False):
        if isinstance(panel, LatencyPanel):
            _latency(ax, panel)
        else:
            _rates(ax, panel)
        ax.set_title(textwrap.fill(panel.title, 44), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(figure.panels) :]:
        ax.set_visible(False)
    kinds = {type(panel) for panel in figure.panels}
    legends = [GLYPH] * (LatencyPanel in kinds) + [RATE_GLYPH] * (RatePanel in kinds)
    fig.suptitle("\n".join([figure.title, *legends]), fontsize=9)
    return fig


def plot_paths(prefix: Path, families: list[str]) -> list[Path]:
    """`prefix`-<family>.png for each family (a .png suffix on `prefix` is dropped)."""
    stem = prefix.with_suffix("") if prefix.suffix == ".png" else prefix
    return [stem.with_name(f"{stem.name}-{family}.png") for family in families]


def write_plots(data: dict[str, Any], prefix: Path) -> list[Path]:
    """Draw the saved run `data` into one PNG per family next to `prefix`; return the paths."""
    import matplotlib.pyplot as plt

    chosen = figures(data)
    paths = plot_paths(prefix, [f.family for f in chosen])
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for figure, path in zip(chosen, paths, strict=True):
        fig = draw(figure)
        _save_small(fig, path)
        plt.close(fig)
    return paths


def _save_small(fig: Any, path: Path) -> None:
    """Save with a 64-colour palette: a third of the bytes, the same chart to the eye."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=64).save(path, format="PNG", optimize=True)
