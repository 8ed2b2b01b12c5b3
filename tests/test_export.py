"""`swast export`: a finished run's model in its smallest real form, loaded back with the run's accuracy."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from swast.cli import execute, main
from swast.export import accuracy, export_run, load_exported


@pytest.mark.parametrize("pruner", ["rigl", "structured"])
def test_export_round_trips_with_the_runs_accuracy(make_trainer, pruner):
    trainer = make_trainer(**{"pruner.name": pruner, "train.epochs": 4, "coreset.warmup": 1})
    summary = execute(trainer.cfg, trainer.run_dir)
    report = export_run(trainer.run_dir, batch_size=8, repeats=2)
    model = load_exported(report.path)
    n = len(trainer.test_set)
    assert accuracy(model, trainer.test_set) == pytest.approx(summary["test_acc"], abs=0.5 / n)
    assert report.test_acc == pytest.approx(summary["test_acc"], abs=0.5 / n)
    assert report.run_test_acc == pytest.approx(summary["test_acc"], abs=0.5 / n)
    exported_params = sum(p.numel() for p in model.parameters())
    assert report.before.params == summary["params_total"]
    assert report.after.params == summary["params_kept"] < summary["params_total"]
    assert report.after.file_bytes < report.before.file_bytes
    if pruner == "structured":
        assert report.kind == "module"
        assert exported_params == summary["params_kept"]  # physically smaller
        assert report.after.macs < 0.7 * report.before.macs
    else:
        assert report.kind == "masked_state_dict"
        assert exported_params == summary["params_total"]  # dense kernels holding zeros
        assert report.after.macs == report.before.macs
        assert report.kept_macs < report.before.macs


def test_export_command_prints_before_and_after(make_trainer):
    trainer = make_trainer(**{"pruner.name": "structured", "train.epochs": 3, "coreset.warmup": 1})
    execute(trainer.cfg, trainer.run_dir)
    result = CliRunner().invoke(main, ["export", str(trainer.run_dir), "--batch-size", "4", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    for label in ("parameters", "MACs per sample", "CPU latency", "test accuracy"):
        assert label in result.output
    assert (trainer.run_dir / "export" / "model.pt").is_file()


def test_export_without_a_checkpoint_names_the_problem(tmp_path):
    result = CliRunner().invoke(main, ["export", str(tmp_path)])
    assert result.exit_code == 2
    assert "checkpoint.pt" in result.output
