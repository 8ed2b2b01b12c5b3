"""Longer end-to-end runs of the shipped presets and the experiment pipeline (nox -s slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from swast.cli import main
from swast.figures import FIGURES

CONFIGS = Path(__file__).parents[1] / "configs"
pytestmark = pytest.mark.slow


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_cpu_digits_preset_runs_to_a_good_model(tmp_path):
    result = invoke("run", "--config", str(CONFIGS / "cpu-digits.yaml"), "--no-progress", "--output-dir", str(tmp_path), "--name", "d")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["test_acc"] > 0.9 and summary["density_backbone"] == pytest.approx(0.5, abs=0.01)


def test_sweep_then_report_produces_the_table_and_figures(tmp_path):
    sweep = invoke("sweep", str(CONFIGS / "digits-sweep.yaml"), "--method", "full,prune-only,coreset-only,swast-trim,swast-cut",
                   "--coreset", "0.05", "--prune-rate", "0.5,0.9", "--seeds", "0,1", "--epochs", "10",
                   "--workers", "2", "--sweep-dir", str(tmp_path / "sw"), "--no-progress")
    assert sweep.exit_code == 0, sweep.output
    assert "done 16" in sweep.output.replace("\n", " ")
    report = invoke("report", str(tmp_path / "sw"))
    assert report.exit_code == 0, report.output
    out = tmp_path / "sw" / "report"
    table = (out / "table1.md").read_text()
    assert all(method in table for method in ("coreset-only", "swast-trim", "swast-cut", "prune-only"))
    assert (out / "table1.csv").read_text().count("\n") >= 7  # header + the 7 (method, rate) rows
    for name in FIGURES:  # digits-sweep.yaml has label noise and a validation split: every figure applies
        assert (out / f"{name}_digits_small_cnn.png").stat().st_size > 10_000, name
