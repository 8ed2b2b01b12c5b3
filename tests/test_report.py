"""`swast report`: Table 1 and the figures from run folders in the real output format, with known numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from swast.cli import main
from swast.config import build_config, dump_yaml
from swast.results import read_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_NAMES = ["fig5a_noisy_share", "fig5b_overfitting_gap", "fig5c_noisy_clean_loss", "fig6a_accuracy_vs_prune_rate",
                "fig6b_accuracy_vs_flops"]


def noisy_metrics(epochs: int = 6, share: float = 0.2, gap: float = 0.1) -> list[dict[str, Any]]:
    """metrics.jsonl lines of a run with label noise: warm-up, then a selection every 2 epochs."""
    lines = []
    for epoch in range(1, epochs + 1):
        coreset = epoch > 2
        line = {"epoch": epoch, "phase": "coreset" if coreset else "warm-up", "selection_seconds": 0.1 if coreset and epoch % 2 else 0.0,
                "test_loss": 0.5 + gap, "val_loss": 0.5, "train_loss_noisy": 2.0 * epoch, "train_loss_clean": 1.0}
        if coreset:
            line["noisy_share"] = share - 0.01 * epoch
        lines.append(line)
    return lines


def write_run(root: Path, method: str, seed: int, acc: float, *, rate: float | None = None, kept: int = 1000,
              metrics: list[dict[str, Any]] | None = None) -> Path:
    """One run folder as `swast run` writes it: resolved config.yaml, summary.json, metrics.jsonl."""
    flags: dict[str, Any] = {"method": method, "seed": seed, "output_dir": str(root), "pruner.rate": rate if rate is not None else 0.5}
    name = f"{method}-{rate}-{seed}"
    cfg = build_config(None, {**flags, "name": name})
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_yaml(cfg))
    summary = {"name": name, "method": method, "selector": cfg.coreset.selector if cfg.coreset.enabled else None,
               "pruner": cfg.pruner.name if cfg.prunes else "none", "test_acc": acc, "val_acc": acc,
               "params_total": 1000, "params_kept": kept, "relative_flops": 0.1 if cfg.coreset.enabled else 1.0 - 0.5 * (rate or 0)}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in (metrics or noisy_metrics())))
    return folder


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for seed, acc in enumerate([0.80, 0.84]):
        write_run(root, "coreset-only", seed, acc, metrics=noisy_metrics(share=0.3))
    for seed, acc in enumerate([0.86, 0.88]):
        write_run(root, "swast-cut", seed, acc, rate=0.5, kept=600, metrics=noisy_metrics(share=0.2, gap=0.05))
    for seed, acc in enumerate([0.70, 0.74]):
        write_run(root, "swast-cut", seed, acc, rate=0.9, kept=150)
    for seed, acc in enumerate([0.90, 0.92]):
        write_run(root, "prune-only", seed, acc, rate=0.5, kept=600)
    write_run(root, "full", 0, 0.95)
    return root


def report(*args: str):
    return CliRunner().invoke(main, ["report", *args])


def test_table_has_means_stds_differences_and_marks(sweep_dir):
    result = report(str(sweep_dir))
    assert result.exit_code == 0, result.output
    md = (sweep_dir / "report" / "table1.md").read_text().splitlines()
    block = md.index("## swast-cut vs coreset-only")
    assert md[block + 2] == "| model | dataset | coreset | 90% | 50% | coreset-only |"
    # coreset-only 80, 84 -> 82 +- 2.83; cut p0.5 86, 88 -> 87 +- 1.41 (+5); cut p0.9 70, 74 -> 72 +- 2.83 (-10)
    assert md[block + 4] == "| small_cnn | digits | 10% | 72.00 ± 2.83 (-10.00) | **87.00 ± 1.41 (+5.00)** | _82.00 ± 2.83_ |"
    assert md[block + 5] == "| small_cnn | digits | params after pruning | 150 | 600 | 1.0k |"
    block = md.index("## prune-only vs full")
    assert md[block + 4] == "| small_cnn | digits | all data | _91.00 ± 1.41 (-4.00)_ | **95.00** |"

    rows = list(csv.DictReader((sweep_dir / "report" / "table1.csv").open()))
    cut = next(r for r in rows if r["method"] == "swast-cut" and r["prune_rate"] == "0.5")
    assert float(cut["acc_mean_pct"]) == pytest.approx(87.0)
    assert float(cut["acc_std_pct"]) == pytest.approx(2**0.5)
    assert float(cut["diff_to_baseline_pct"]) == pytest.approx(5.0)
    assert (cut["mark"], cut["seeds"], cut["params_kept"], cut["coreset"]) == ("best", "2", "600.0", "0.1")
    full = next(r for r in rows if r["method"] == "full")
    assert (full["acc_std_pct"], full["diff_to_baseline_pct"], full["coreset"]) == ("", "", "")


def test_all_figures_are_written_from_the_metrics(sweep_dir):
    result = report(str(sweep_dir), "--out", str(sweep_dir.parent / "out"))
    assert result.exit_code == 0, result.output
    for name in FIGURE_NAMES:
        png = sweep_dir.parent / "out" / f"{name}_digits_small_cnn.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, name
    assert "skipped" not in result.output


def test_figures_csv_holds_the_plotted_numbers(sweep_dir):
    result = report(str(sweep_dir))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((sweep_dir / "report" / "figures.csv").open()))

    def pick(figure: str, series: str, x: str) -> dict[str, str]:
        return next(r for r in rows if r["figure"].startswith(figure) and r["series"].startswith(series) and r["x"] == x)

    cut = pick("fig6a", "swast-cut", "0.5")  # accuracies 86, 88
    assert float(cut["y"]) == pytest.approx(87.0) and float(cut["y_std"]) == pytest.approx(2**0.5)
    assert pick("fig6b", "prune-only", "0.75")["y"] == "91.0"  # relative FLOPs 1 - 0.5 * 0.5
    baseline = pick("fig5b", "coreset-only", "")  # a dashed line: the same gap at every prune rate
    assert float(baseline["y"]) == pytest.approx(0.1)
    assert float(pick("fig5b", "swast-cut", "0.5")["y"]) == pytest.approx(0.05)
    shares = [float(r["y"]) for r in rows if r["figure"].startswith("fig5a") and r["series"] == "coreset-only"]
    assert shares == pytest.approx([100 * (0.3 - 0.01 * e) for e in (3, 5)])  # the selection epochs
    assert {r["figure"] for r in rows} == set(FIGURE_NAMES) and {(r["dataset"], r["model"]) for r in rows} == {("digits", "small_cnn")}


def test_figures_without_their_data_are_skipped_with_a_note(tmp_path):
    clean = [{"epoch": e, "phase": "warm-up", "selection_seconds": 0.0, "test_loss": 0.5, "val_loss": None} for e in (1, 2)]
    write_run(tmp_path, "coreset-only", 0, 0.8, metrics=clean)
    write_run(tmp_path, "swast-trim", 0, 0.85, rate=0.5, metrics=clean)
    result = report(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "fig5a_noisy_share (digits, small_cnn) skipped: no run logged noisy_share" in result.output
    assert "fig5b_overfitting_gap (digits, small_cnn) skipped" in result.output
    assert "fig5c_noisy_clean_loss (digits, small_cnn) skipped" in result.output
    assert "fig6a_accuracy_vs_prune_rate (digits, small_cnn) skipped: no swast-cut or prune-only runs" in result.output
    assert (tmp_path / "report" / "table1.md").exists()
    assert not list((tmp_path / "report").glob("*.png"))


def test_unfinished_runs_are_left_out_with_a_note(sweep_dir):
    failed = write_run(sweep_dir, "swast-cut", 2, 0.1, rate=0.5)
    (failed / "summary.json").unlink()
    (failed / "error.txt").write_text("Traceback ...")
    result = report(str(sweep_dir))
    assert result.exit_code == 0, result.output
    assert f"left out unfinished run folder {failed.name} (failed: see its error.txt)" in result.output
    assert "**87.00 ± 1.41 (+5.00)**" in (sweep_dir / "report" / "table1.md").read_text()  # still seeds 0 and 1 only


def test_the_same_cell_twice_is_an_error(tmp_path):
    write_run(tmp_path / "a", "coreset-only", 0, 0.8)
    twin = write_run(tmp_path / "b", "coreset-only", 0, 0.9)
    twin.rename(tmp_path / "a" / "copy")
    result = report(str(tmp_path / "a"))
    assert result.exit_code == 2 and "are the same cell" in result.output


def test_no_finished_runs_is_a_usage_error(tmp_path):
    result = report(str(tmp_path))
    assert result.exit_code == 2 and "holds no finished run folders" in result.output


def test_rounds_are_the_selection_epochs(tmp_path):
    run = read_run(write_run(tmp_path, "coreset-only", 0, 0.8, metrics=noisy_metrics(epochs=6, share=0.2)))
    # selections at epochs 3 and 5 (coreset epochs with selection time); epochs 4 and 6 reuse the coreset
    assert run.rounds("noisy_share") == pytest.approx([0.17, 0.15])
    assert run.key.coreset == 0.1 and run.key.prune_rate is None


def test_summary_counts_the_parameters_left_after_pruning(make_trainer):
    trainer = make_trainer(method="swast-cut")
    summary = trainer.fit()
    total = sum(p.numel() for p in trainer.model.parameters())
    removed = sum(int((~mask).sum()) for mask in trainer.pruner.masks().values())
    assert removed > 0
    assert (summary["params_total"], summary["params_kept"]) == (total, total - removed)
    dense = make_trainer(method="coreset-only").fit()
    assert dense["params_kept"] == dense["params_total"] == total


def test_a_pruning_method_without_its_baseline_gets_no_differences(tmp_path):
    write_run(tmp_path, "swast-cut", 0, 0.9, rate=0.3, kept=800)
    write_run(tmp_path, "swast-cut", 0, 0.8, rate=0.7, kept=400)
    assert report(str(tmp_path)).exit_code == 0
    md = (tmp_path / "report" / "table1.md").read_text().splitlines()
    block = md.index("## swast-cut")
    assert md[block + 2] == "| model | dataset | coreset | 70% | 30% |"
    assert md[block + 4] == "| small_cnn | digits | 10% | _80.00_ | **90.00** |"
