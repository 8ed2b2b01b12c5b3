"""`swast report`: the paper's Table 1 from a folder of finished runs, as Markdown and CSV, plus the
Fig. 5/6 panels (swast/figures.py).

Table 1 layout: one block per pruning method; a row per (dataset, model, coreset size); a column per
prune rate (highest first) and one for the method's unpruned baseline (coreset-only for coreset methods,
full for methods on all data). A cell is the final-epoch test accuracy in percent, mean and sample standard
deviation over seeds, with its difference to the baseline's mean in the same row; the best and
runner-up means of a row (baseline included) are marked. Each (dataset, model) ends with the parameters
left after pruning, from the runs' ``params_kept``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from swast.results import CellKey, Run, Stat, by_cell, load_runs, method_order, stat

RowKey = tuple[str, str, float | None]  # dataset, model, coreset


@dataclass(frozen=True)
class Block:
    """One pruning method against its unpruned baseline (either may be absent from the runs)."""

    method: str | None
    baseline: str | None
    rows: list[RowKey]
    rates: list[float]

    @property
    def columns(self) -> list[tuple[str, float | None]]:
        """(method, prune rate) per column: the method at each rate, then the baseline (unpruned)."""
        pruned = [(self.method, rate) for rate in self.rates] if self.method else []
        return pruned + ([(self.baseline, None)] if self.baseline else [])

    @property
    def title(self) -> str:
        return " vs ".join(m for m in (self.method, self.baseline) if m) if self.method else str(self.baseline)


@dataclass(frozen=True)
class TableCell:
    block: str
    row: RowKey
    method: str
    prune_rate: float | None
    accuracy: Stat
    difference: float | None
    mark: str  # best | runner-up | ""
    params_kept: float | None
    params_total: float | None
    relative_flops: float


def blocks(cells: dict[CellKey, list[Run]]) -> list[Block]:
    """One block per pruning method, grouped by data regime (coresets first, then all data)."""
    out = []
    for uses_coreset in (True, False):
        keys = [k for k in cells if (k.coreset is not None) == uses_coreset]
        methods = sorted({k.method for k in keys}, key=method_order)
        pruning = [m for m in methods if any(k.method == m and k.prune_rate is not None for k in keys)]
        baseline = next((m for m in methods if m not in pruning), None)
        for method in pruning or ([None] if baseline else []):
            members = [k for k in keys if k.method in (method, baseline)]
            rows = sorted({(k.dataset, k.model, k.coreset) for k in members}, key=lambda r: (r[0], r[1], -(r[2] or 0)))
            rates = sorted({k.prune_rate for k in members if k.prune_rate is not None}, reverse=True)
            out.append(Block(method, baseline, rows, rates))
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def table_cells(cells: dict[CellKey, list[Run]], block: Block) -> list[TableCell]:
    out = []
    for row in block.rows:
        dataset, model, coreset = row
        present = []
        for method, rate in block.columns:
            runs = cells.get(CellKey(method, dataset, model, coreset, rate))
            if runs:
                present.append((method, rate, runs))
        accuracies = {(m, r): stat([100.0 * float(run.summary["test_acc"]) for run in runs]) for m, r, runs in present}
        base = accuracies.get((block.baseline, None))
        ranked = sorted({round(s.mean, 10) for s in accuracies.values()}, reverse=True)
        for method, rate, runs in present:
            acc = accuracies[(method, rate)]
            place = ranked.index(round(acc.mean, 10))
            kept = [float(r.summary["params_kept"]) for r in runs if "params_kept" in r.summary]
            total = [float(r.summary["params_total"]) for r in runs if "params_total" in r.summary]
            out.append(TableCell(
                block=block.title,
                row=row,
                method=method,
                prune_rate=rate,
                accuracy=acc,
                difference=acc.mean - base.mean if base is not None and method != block.baseline else None,
                mark={0: "best", 1: "runner-up"}.get(place, "") if len(present) > 1 else "",
                params_kept=_mean(kept),
                params_total=_mean(total),
                relative_flops=sum(float(r.summary["relative_flops"]) for r in runs) / len(runs),
            ))
    return out


# --- formatting ------------------------------------------------------------------------------------------
def format_params(n: float | None) -> str:
    if n is None:
        return "n/a"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def format_cell(cell: TableCell) -> str:
    text = f"{cell.accuracy.mean:.2f}" + (f" ± {cell.accuracy.std:.2f}" if cell.accuracy.std is not None else "")
    if cell.difference is not None:
        text += f" ({cell.difference:+.2f})"
    return {"best": f"**{text}**", "runner-up": f"_{text}_"}.get(cell.mark, text)


def _pct(value: float | None) -> str:
    return "all data" if value is None else f"{100 * value:g}%"


def markdown_block(block: Block, cells: list[TableCell]) -> list[str]:
    columns = block.columns
    header = ["model", "dataset", "coreset", *[f"{100 * r:g}%" if r is not None else m for m, r in columns]]
    lines = [f"## {block.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lookup = {(c.row, c.method, c.prune_rate): c for c in cells}
    groups = sorted({(row[0], row[1]) for row in block.rows})
    for dataset, model in groups:
        for row in (r for r in block.rows if (r[0], r[1]) == (dataset, model)):
            values = [format_cell(lookup[(row, m, r)]) if (row, m, r) in lookup else "–" for m, r in columns]
            lines.append("| " + " | ".join([model, dataset, _pct(row[2]), *values]) + " |")
        params = []
        for method, rate in columns:
            kept = [c.params_kept for c in cells if (c.row[0], c.row[1], c.method, c.prune_rate) == (dataset, model, method, rate)]
            params.append(format_params(_mean([k for k in kept if k is not None])) if kept else "–")
        lines.append("| " + " | ".join([model, dataset, "params after pruning", *params]) + " |")
    return lines + [""]


def settings_line(runs: list[Run]) -> str:
    """The settings the numbers depend on besides the table's axes, as found in the runs (several values
    separated by '/' mean the folder mixes settings)."""
    found = {
        "selector": {r.config["coreset"]["selector"] for r in runs},
        "pruner": {r.config["pruner"]["name"] for r in runs},
        "epochs": {r.config["train"]["epochs"] for r in runs},
        "label noise": {r.config["data"]["label_noise"] for r in runs},
        "seeds": {r.seed for r in runs},
    }
    return ", ".join(f"{name} {' / '.join(str(v) for v in sorted(values))}" for name, values in found.items())


CSV_FIELDS = ["block", "dataset", "model", "coreset", "method", "prune_rate", "seeds", "acc_mean_pct", "acc_std_pct",
              "diff_to_baseline_pct", "mark", "params_kept", "params_total", "relative_flops"]


def write_tables(runs: list[Run], out_dir: Path) -> list[Path]:
    cells = by_cell(runs)
    all_cells: list[TableCell] = []
    md = [
        "# Table 1: test accuracy (%)",
        "",
        "Final-epoch test accuracy, mean ± sample standard deviation over seeds (n - 1 denominator; no ± for a "
        "single seed), with the difference to the unpruned baseline of the same row in parentheses. **Bold**: best "
        "mean of the row, _italic_: runner-up (baseline included). \"params after pruning\": kept weights of the "
        "pruned layers plus all other parameters, mean over the column's runs.",
        "",
        f"Runs: {len(runs)}; {settings_line(runs)}.",
        "",
    ]
    for block in blocks(cells):
        block_cells = table_cells(cells, block)
        all_cells += block_cells
        md += markdown_block(block, block_cells)
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, csv_path = out_dir / "table1.md", out_dir / "table1.csv"
    md_path.write_text("\n".join(md))
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for c in all_cells:
            writer.writerow({
                "block": c.block, "dataset": c.row[0], "model": c.row[1], "coreset": "" if c.row[2] is None else c.row[2],
                "method": c.method, "prune_rate": "" if c.prune_rate is None else c.prune_rate, "seeds": c.accuracy.n,
                "acc_mean_pct": c.accuracy.mean, "acc_std_pct": "" if c.accuracy.std is None else c.accuracy.std,
                "diff_to_baseline_pct": "" if c.difference is None else c.difference, "mark": c.mark,
                "params_kept": "" if c.params_kept is None else c.params_kept,
                "params_total": "" if c.params_total is None else c.params_total, "relative_flops": c.relative_flops,
            })
    return [md_path, csv_path]


def write_report(folder: Path, out_dir: Path) -> tuple[list[Path], list[str]]:
    """Tables and figures for the finished runs in ``folder``; returns the files written and notes on what
    was left out (unfinished runs, figures without data)."""
    from swast.figures import write_figures

    runs, notes = load_runs(folder)
    written = write_tables(runs, out_dir)
    figures, figure_notes = write_figures(runs, out_dir)
    return written + figures, notes + figure_notes
