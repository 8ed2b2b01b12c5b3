"""The paper's Fig. 5 and Fig. 6 panels from finished runs, as PNG files (matplotlib's Agg canvas: no
display, no global pyplot state).

Figures are drawn per (dataset, model), averaging each series over seeds. A figure whose metrics no run
logged is skipped with a note that says what would produce them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.container import ErrorbarContainer
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from swast.results import CellKey, Run, by_cell, method_order, stat

Cells = dict[CellKey, list[Run]]

# Pruning methods get a colour map shaded by prune rate; unpruned baselines a fixed colour.
COLORMAPS = {"swast-trim": "Blues", "swast-cut": "Reds", "prune-only": "Greens"}
BASELINE_COLORS = {"coreset-only": "black", "full": "dimgray"}


def color(key: CellKey) -> object:
    if key.prune_rate is None:
        return BASELINE_COLORS.get(key.method, "black")
    return matplotlib.colormaps[COLORMAPS.get(key.method, "Purples")](0.35 + 0.6 * key.prune_rate)


def label(key: CellKey) -> str:
    return key.method + (f" p={key.prune_rate:g}" if key.prune_rate is not None else "")


def ordered(keys: list[CellKey]) -> list[CellKey]:
    return sorted(keys, key=lambda k: (method_order(k.method), -(k.coreset or 0), k.prune_rate or 0))


def regime(coreset: float | None) -> str:
    return "all data" if coreset is None else f"coreset {100 * coreset:g}%"


def mean_curve(series: list[list[float]]) -> np.ndarray:
    """Seed mean of per-epoch (or per-round) series, over the length all seeds share."""
    length = min(len(s) for s in series)
    return np.mean([s[:length] for s in series], axis=0)


def panels(count: int, title: str) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(4.4 * count + 1.8, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, wrap=True)  # a one-panel figure is narrower than the longer titles
    return fig, list(fig.subplots(1, count, squeeze=False)[0])


def by_regime(keys: list[CellKey]) -> list[tuple[float | None, list[CellKey]]]:
    """Keys grouped by coreset size (largest first, all-data methods last): one panel each."""
    sizes = sorted({k.coreset for k in keys}, key=lambda c: -1.0 if c is None else c, reverse=True)
    return [(size, ordered([k for k in keys if k.coreset == size])) for size in sizes]


def legend(fig: Figure, axes: list[Axes]) -> None:
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(text, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 4), fontsize="small")


# --- Fig. 5 ------------------------------------------------------------------------------------------------
def noisy_share(cells: Cells) -> Figure | str:
    """Fig. 5a: share of noisy (flipped-label) samples in each coreset, per selection round."""
    keys = [k for k, runs in cells.items() if k.coreset is not None and all(r.rounds("noisy_share") for r in runs)]
    if not keys:
        return "no run logged noisy_share (needs a coreset method and --label-noise > 0)"
    groups = by_regime(keys)
    fig, axes = panels(len(groups), "Fig. 5a: noisy samples in each selected coreset (lower is better)")
    for ax, (size, members) in zip(axes, groups):
        for key in members:
            y = 100 * mean_curve([r.rounds("noisy_share") for r in cells[key]])
            ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=3, color=color(key), label=label(key))
        ax.set(title=regime(size), xlabel="selection round", ylabel="noisy share of coreset (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend(fig, axes)
    return fig


def overfitting_gap(cells: Cells) -> Figure | str:
    """Fig. 5b: final test loss minus validation loss against the prune rate; baselines as lines."""
    keys = [k for k, runs in cells.items()
            if all(r.final.get("test_loss") is not None and r.final.get("val_loss") is not None for r in runs)]
    if not any(k.prune_rate is not None for k in keys):
        return "no pruned run logged test_loss and val_loss (needs a pruning method and data.val_fraction > 0)"
    groups = [(size, members) for size, members in by_regime(keys) if any(k.prune_rate is not None for k in members)]
    fig, axes = panels(len(groups), "Fig. 5b: overfitting, test loss − validation loss (lower is better)")
    for ax, (size, members) in zip(axes, groups):
        for method in sorted({k.method for k in members}, key=method_order):
            series = [k for k in members if k.method == method]
            gaps = [stat([r.final["test_loss"] - r.final["val_loss"] for r in cells[k]]) for k in series]
            if series[0].prune_rate is None:
                ax.axhline(gaps[0].mean, linestyle="--", color=color(series[0]), label=method)
                continue
            ax.errorbar([k.prune_rate for k in series], [g.mean for g in gaps], yerr=[g.std or 0.0 for g in gaps],
                        marker="o", capsize=3, color=color(series[len(series) // 2]), label=method)
        ax.set(title=regime(size), xlabel="prune rate", ylabel="test loss − validation loss")
    legend(fig, axes)
    return fig


def noisy_clean_loss(cells: Cells) -> Figure | str:
    """Fig. 5c: loss on the noisy training samples over the loss on the clean ones, per epoch."""

    def ratio(run: Run) -> list[tuple[int, float]]:
        return [(r["epoch"], r["train_loss_noisy"] / r["train_loss_clean"]) for r in run.metrics
                if r.get("train_loss_noisy") is not None and r.get("train_loss_clean")]

    keys = [k for k, runs in cells.items() if all(ratio(r) for r in runs)]
    if not keys:
        return "no run logged train_loss_noisy and train_loss_clean (needs --label-noise > 0)"
    groups = by_regime(keys)
    fig, axes = panels(len(groups), "Fig. 5c: loss on noisy / loss on clean training samples (higher: less memorisation)")
    for ax, (size, members) in zip(axes, groups):
        for key in members:
            curves = [ratio(r) for r in cells[key]]
            y = mean_curve([[value for _, value in curve] for curve in curves])
            ax.plot([epoch for epoch, _ in curves[0]][: len(y)], y, color=color(key), label=label(key))
        ax.set(title=regime(size), xlabel="epoch", ylabel="noisy / clean loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend(fig, axes)
    return fig


# --- Fig. 6 ------------------------------------------------------------------------------------------------
COMPARED = ("swast-cut", "prune-only")


def _compared_series(cells: Cells) -> dict[tuple[str, float | None], list[CellKey]]:
    """SWaST-cut (one series per coreset size) and pruning-only, each ordered by prune rate."""
    series: dict[tuple[str, float | None], list[CellKey]] = {}
    for key in ordered([k for k in cells if k.method in COMPARED and k.prune_rate is not None]):
        series.setdefault((key.method, key.coreset), []).append(key)
    return series


def _series_style(series: dict[tuple[str, float | None], list[CellKey]]) -> dict[tuple[str, float | None], tuple[str, object]]:
    """Label and colour per series; SWaST-cut's coreset sizes get distinct shades of its colour map."""
    style = {}
    for method in COMPARED:
        members = [s for s in series if s[0] == method]
        for i, (_, coreset) in enumerate(members):
            shade = 0.45 + 0.5 * i / max(1, len(members) - 1)
            text = method if coreset is None else f"{method}, {regime(coreset)}"
            style[(method, coreset)] = (text, matplotlib.colormaps[COLORMAPS[method]](shade))
    return style


def _missing_note(ax: Axes, series: dict[tuple[str, float | None], list[CellKey]]) -> None:
    missing = [m for m in COMPARED if not any(method == m for method, _ in series)]
    if missing:
        ax.text(0.02, 0.02, f"no {', '.join(missing)} runs in this folder", transform=ax.transAxes, fontsize="small")


def accuracy_vs_rate(cells: Cells) -> Figure | str:
    """Fig. 6a: test accuracy against the prune rate, SWaST-cut vs pruning-only."""
    series = _compared_series(cells)
    if not series:
        return "no swast-cut or prune-only runs"
    fig, (ax,) = panels(1, "Fig. 6a: accuracy vs prune rate, SWaST-cut vs pruning-only")
    style = _series_style(series)
    for name, keys in series.items():
        accs = [stat([100 * float(r.summary["test_acc"]) for r in cells[k]]) for k in keys]
        ax.errorbar([k.prune_rate for k in keys], [a.mean for a in accs], yerr=[a.std or 0.0 for a in accs], marker="o",
                    capsize=3, color=style[name][1], label=style[name][0])
    ax.set(xlabel="prune rate", ylabel="test accuracy (%)")
    _missing_note(ax, series)
    legend(fig, [ax])
    return fig


def accuracy_vs_flops(cells: Cells) -> Figure | str:
    """Fig. 6b: test accuracy against training FLOPs relative to dense full-data training."""
    series = _compared_series(cells)
    if not series:
        return "no swast-cut or prune-only runs"
    fig, (ax,) = panels(1, "Fig. 6b: accuracy vs training FLOPs, SWaST-cut vs pruning-only")
    style = _series_style(series)
    for name, keys in series.items():
        flops = [stat([float(r.summary["relative_flops"]) for r in cells[k]]).mean for k in keys]
        accs = [stat([100 * float(r.summary["test_acc"]) for r in cells[k]]).mean for k in keys]
        ax.plot(flops, accs, marker="o", color=style[name][1], label=style[name][0])
        for key, x, y in zip(keys, flops, accs):
            ax.annotate(f"{key.prune_rate:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize="x-small")
    ax.set(xscale="log", xlabel="training FLOPs relative to dense full-data training", ylabel="test accuracy (%)")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
    _missing_note(ax, series)
    legend(fig, [ax])
    return fig


FIGURES: dict[str, Callable[[Cells], Figure | str]] = {
    "fig5a_noisy_share": noisy_share,
    "fig5b_overfitting_gap": overfitting_gap,
    "fig5c_noisy_clean_loss": noisy_clean_loss,
    "fig6a_accuracy_vs_prune_rate": accuracy_vs_rate,
    "fig6b_accuracy_vs_flops": accuracy_vs_flops,
}


def plotted_points(fig: Figure) -> list[dict[str, Any]]:
    """Every labelled point of a drawn figure, read back from its artists so that the numbers are exactly
    those plotted: series means, error bars (std over seeds) and baselines drawn as horizontal lines
    (x left empty: they hold for every x)."""
    points: list[dict[str, Any]] = []

    def add(ax: Axes, series: str, x: object, y: float, err: float | str = "") -> None:
        points.append({"panel": ax.get_title(), "series": series, "x_label": ax.get_xlabel(), "x": x,
                       "y_label": ax.get_ylabel(), "y": float(y), "y_std": err})

    for ax in fig.axes:
        for container in ax.containers:
            if isinstance(container, ErrorbarContainer):
                data_line, _, bars = container.lines
                segments = bars[0].get_segments() if bars else [None] * len(data_line.get_xdata())
                for x, y, seg in zip(data_line.get_xdata(), data_line.get_ydata(), segments):
                    add(ax, container.get_label(), float(x), y, "" if seg is None else float(seg[1][1] - seg[0][1]) / 2)
        for line in ax.lines:
            name = str(line.get_label())
            if name.startswith("_"):
                continue
            if line.get_transform() is not ax.transData:  # axhline: a constant across the panel
                add(ax, name, "", line.get_ydata()[0])
                continue
            for x, y in zip(line.get_xdata(), line.get_ydata()):
                add(ax, name, float(x), y)
    return points


def write_figures(runs: list[Run], out_dir: Path) -> tuple[list[Path], list[str]]:
    """One PNG per figure and (dataset, model), and ``figures.csv`` with the numbers plotted in them; a note
    for each figure skipped for lack of data."""
    cells = by_cell(runs)
    written, notes, rows = [], [], []
    out_dir.mkdir(parents=True, exist_ok=True)
    for dataset, model in sorted({(k.dataset, k.model) for k in cells}):
        group = {k: v for k, v in cells.items() if (k.dataset, k.model) == (dataset, model)}
        for name, draw in FIGURES.items():
            result = draw(group)
            if isinstance(result, str):
                notes.append(f"{name} ({dataset}, {model}) skipped: {result}")
                continue
            path = out_dir / f"{name}_{dataset}_{model}.png"
            result.savefig(path, dpi=120)
            written.append(path)
            rows += [{"figure": name, "dataset": dataset, "model": model, **point} for point in plotted_points(result)]
    if rows:
        csv_path = out_dir / "figures.csv"
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        written.append(csv_path)
    return written, notes
