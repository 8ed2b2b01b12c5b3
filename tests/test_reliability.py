"""A run survives interruption, bad input and bad luck, and loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from swast import sweep as sweeping
from swast.cli import main

PLUGINS = Path(__file__).parent / "plugins"
FAULTS = str(PLUGINS / "faults_plugin.py")
QUICK = ["--epochs", "8", "--warmup", "2", "--interval", "2", "--no-progress"]
TIMING = ("selection_seconds", "epoch_seconds")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path, signal_name):
    # 2 warm-up epochs of 41 steps, then 4 steps per coreset epoch: step 100 is batch 2 of epoch 7, in the
    # coreset phase, after selections at epochs 3, 5 and 7 and many RigL updates.
    common = [*QUICK, "--plugin", FAULTS, "--pruner", "test.rigl_signal", "--output-dir", str(tmp_path)]
    whole = invoke("run", *common, "--name", "whole")
    assert whole.exit_code == 0, whole.output

    stopped = invoke("run", *common, "--name", "stopped", "--set", "pruner.options.signal_at_step=100",
                     "--set", f"pruner.options.signal_name={signal_name}")
    assert stopped.exit_code == 128 + getattr(signal, signal_name), stopped.output
    assert "Resume with: swast run --resume" in stopped.output
    partial = final_state(tmp_path / "stopped")
    assert partial["epoch"] == 6 and partial["progress"]["epoch"] == 7 and partial["progress"]["batch"] == 2
    assert partial["pruner"]["rigl_steps"] >= 1 and partial["coreset"] is not None

    resumed = invoke("run", "--resume", str(tmp_path / "stopped"), "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert metrics(tmp_path / "whole") == metrics(tmp_path / "stopped")
    a, b = final_state(tmp_path / "whole"), final_state(tmp_path / "stopped")
    assert torch.equal(a["coreset"]["indices"], b["coreset"]["indices"])
    for mask_a, mask_b in zip(a["pruner"]["backward_masks"], b["pruner"]["backward_masks"]):
        assert (mask_a is None and mask_b is None) or torch.equal(mask_a, mask_b)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_kill_9_loses_at_most_the_epoch_in_progress(tmp_path):
    command = [sys.executable, "-m", "swast.cli", "run", "--epochs", "30", "--warmup", "2", "--interval", "2",
               "--no-progress", "--output-dir", str(tmp_path), "--name", "k"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = tmp_path / "k" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 4):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    logged = len(log.read_text().splitlines())
    saved = final_state(tmp_path / "k")["epoch"]
    assert 4 <= logged < 30 and saved >= logged - 1
    resumed = invoke("run", "--resume", str(tmp_path / "k"), "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert [r["epoch"] for r in metrics(tmp_path / "k")] == list(range(1, 31))


def test_checkpoints_rotate_and_keep_the_last_n(tmp_path):
    result = invoke("run", *QUICK, "--output-dir", str(tmp_path), "--name", "rot", "--set", "checkpoint.keep=3")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "rot").glob("checkpoint*.pt"))
    assert files == ["checkpoint-epoch0006.pt", "checkpoint-epoch0007.pt", "checkpoint.pt"]
    assert torch.load(tmp_path / "rot" / "checkpoint-epoch0006.pt", weights_only=False)["epoch"] == 6


def test_a_crash_during_a_save_leaves_the_previous_checkpoint_readable(tmp_path, monkeypatch):
    from swast import checkpoint

    run_dir = tmp_path / "crash"
    checkpoint.save(run_dir, {"config": {}, "epoch": 1}, keep=1, replaced_epoch=None)

    def dies_midway(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # the process is killed while writing

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(run_dir, {"config": {}, "epoch": 2}, keep=1, replaced_epoch=1)
    monkeypatch.undo()
    assert checkpoint.load(run_dir)["epoch"] == 1


def test_non_finite_loss_stops_and_leaves_the_last_good_checkpoint(tmp_path):
    result = invoke("run", *QUICK, "--plugin", FAULTS, "--dataset", "test.digits_nan", "--output-dir", str(tmp_path), "--name", "nan")
    assert result.exit_code == 1, result.output
    assert "non-finite loss at epoch 1" in result.output and "train.nonfinite=skip" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "nan" / "summary.json").exists()


def test_non_finite_batches_can_be_skipped(tmp_path):
    # GradMatch would (rightly) be stopped by the NaN sample's gradient; a random coreset isolates the loss path.
    result = invoke("run", *QUICK, "--plugin", FAULTS, "--dataset", "test.digits_nan", "--set", "train.nonfinite=skip",
                    "--selector", "random", "--output-dir", str(tmp_path), "--name", "skip")
    assert result.exit_code == 0, result.output
    rows = metrics(tmp_path / "skip")
    assert rows[0]["skipped_batches"] == 1  # the warm-up epoch meets the corrupt sample once
    summary = json.loads((tmp_path / "skip" / "summary.json").read_text())
    assert summary["skipped_batches"] >= 2 and summary["test_acc"] > 0.5


@pytest.mark.parametrize(("selector", "expected"), [
    ("test.too_few", "selector 'test.too_few' returned 128 ids but the budget is 129"),
    ("test.duplicates", "selector 'test.duplicates' returned duplicate ids"),
    ("test.out_of_range", "selector 'test.out_of_range' returned ids outside [0, 1293)"),
])
def test_a_faulty_selector_is_named(tmp_path, selector, expected):
    result = invoke("run", *QUICK, "--plugin", FAULTS, "--selector", selector, "--output-dir", str(tmp_path))
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output


def test_vanishing_classes_and_tiny_coresets_are_handled_and_logged(tmp_path):
    result = invoke("run", *QUICK, "--plugin", FAULTS, "--selector", "test.one_class", "--coreset", "0.01",
                    "--output-dir", str(tmp_path), "--name", "tiny")
    assert result.exit_code == 0, result.output
    rows = metrics(tmp_path / "tiny")
    assert rows[2]["coreset_missing_classes"] == list(range(1, 10))
    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert any("miss whole classes" in w for w in summary["warnings"])
    assert any("smaller than one batch" in w for w in summary["warnings"])
    assert "Note:" in result.output


def test_resume_refuses_other_settings_and_bad_checkpoints(tmp_path):
    assert invoke("run", *QUICK, "--output-dir", str(tmp_path), "--name", "r").exit_code == 0
    mixed = invoke("run", "--resume", str(tmp_path / "r"), "--epochs", "9")
    assert mixed.exit_code == 2 and "drop --epochs" in mixed.output

    missing = invoke("run", "--resume", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.output

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    corrupt = invoke("run", "--resume", str(tmp_path / "bad"))
    assert corrupt.exit_code == 2 and "cannot be read" in corrupt.output and "Traceback" not in corrupt.output

    state = final_state(tmp_path / "r")
    state["config"]["model"]["name"] = "resnet18"
    (tmp_path / "mismatch").mkdir()
    torch.save(state, tmp_path / "mismatch" / "checkpoint.pt")
    mismatch = invoke("run", "--resume", str(tmp_path / "mismatch"))
    assert mismatch.exit_code == 2 and "does not match" in mismatch.output


def test_a_finished_run_resumes_to_the_same_summary(tmp_path):
    assert invoke("run", *QUICK, "--output-dir", str(tmp_path), "--name", "done").exit_code == 0
    before = json.loads((tmp_path / "done" / "summary.json").read_text())
    again = invoke("run", "--resume", str(tmp_path / "done"), "--no-progress")
    assert again.exit_code == 0, again.output
    after = json.loads((tmp_path / "done" / "summary.json").read_text())
    assert after["test_acc"] == before["test_acc"] and len(metrics(tmp_path / "done")) == 8


def test_an_interrupted_sweep_continues_its_cell_from_the_checkpoint(tmp_path):
    args = ["sweep", "--method", "swast-cut", "--seeds", "0", "--sweep-dir", str(tmp_path / "sw"), *QUICK,
            "--plugin", FAULTS, "--pruner", "test.rigl_signal", "--set", "pruner.options.signal_at_step=100"]
    first = invoke(*args)
    assert first.exit_code == 130, first.output
    assert "Sweep interrupted" in first.output
    cell = next(p for p in (tmp_path / "sw").iterdir() if p.is_dir() and p.name != sweeping.LOCKS)
    assert final_state(cell)["progress"]["epoch"] == 7
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "Resuming" in second.output
    assert [r["epoch"] for r in metrics(cell)] == list(range(1, 9))


def test_sigterm_to_a_parallel_sweep_checkpoints_its_cells_and_they_resume(tmp_path):
    """SIGTERM reaches only the sweep's own process (unlike a terminal's Ctrl-C): the workers must hear of it."""
    sweep_dir = tmp_path / "sw"
    args = ["sweep", "--method", "coreset-only", "--seeds", "0,1", "--sweep-dir", str(sweep_dir), "--epochs", "40",
            "--warmup", "2", "--interval", "2", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "swast.cli", *args, "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    while time.time() < deadline:
        logs = list(sweep_dir.glob("*/metrics.jsonl"))
        if len(logs) == 2 and all(len(log.read_text().splitlines()) >= 3 for log in logs):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "Sweep interrupted" in output
    cells = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name != sweeping.LOCKS)
    assert len(cells) == 2
    for cell in cells:
        assert not (cell / "summary.json").exists() and 3 <= final_state(cell)["epoch"] < 40, cell.name

    resumed = invoke(*args)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.count("Resuming") == 2
    for cell in cells:
        assert [r["epoch"] for r in metrics(cell)] == list(range(1, 41))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is a Linux facility")
def test_workers_of_a_killed_sweep_stop_instead_of_training_on(tmp_path):
    sweep_dir = tmp_path / "sw"
    command = [sys.executable, "-m", "swast.cli", "sweep", "--method", "coreset-only", "--seeds", "0,1", "--workers", "2",
               "--sweep-dir", str(sweep_dir), "--epochs", "200", "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    while time.time() < deadline and len(list(sweep_dir.glob("*/metrics.jsonl"))) < 2:
        time.sleep(0.05)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    workers = [pid for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 120
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "worker processes outlived the sweep"
    for log in sweep_dir.glob("*/metrics.jsonl"):
        assert len(log.read_text().splitlines()) < 200


@pytest.mark.parametrize("pruner", ["magnitude", "static", "structured"])
def test_resume_is_exact_for_every_pruner(tmp_path, pruner):
    """RigL is checked mid-batch above; the other pruners here, stopped right after a selection."""
    common = [*QUICK, "--plugin", FAULTS, "--selector", "test.signal_on_second_selection", "--method", "prune-only",
              "--set", "coreset.enabled=true", "--pruner", pruner, "--output-dir", str(tmp_path)]
    assert invoke("run", *common, "--name", "whole").exit_code == 130  # the selector signals in this run too
    assert invoke("run", "--resume", str(tmp_path / "whole"), "--no-progress").exit_code == 0
    # The reference: the same run never interrupted, with a selector that draws the same ids.
    reference = [*QUICK, "--selector", "random", "--method", "prune-only", "--set", "coreset.enabled=true",
                 "--pruner", pruner, "--output-dir", str(tmp_path), "--name", "reference"]
    assert invoke("run", *reference).exit_code == 0
    assert metrics(tmp_path / "whole") == metrics(tmp_path / "reference")
    a, b = final_state(tmp_path / "whole"), final_state(tmp_path / "reference")
    for key in b["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
