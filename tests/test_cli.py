"""The command line: the headline command, plugins, config precedence and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from swast.cli import main

PLUGINS = Path(__file__).parent / "plugins"
QUICK = ["--epochs", "6", "--warmup", "2", "--interval", "2", "--no-progress"]


def invoke(*args: str, catch: bool = True):
    return CliRunner().invoke(main, list(args), catch_exceptions=catch)


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def test_headline_command_runs_with_defaults(tmp_path):
    result = invoke("run", "--selector", "cords.gradmatch", "--pruner", "rigl", "--output-dir", str(tmp_path), "--no-progress")
    assert result.exit_code == 0, result.output
    run_dir = only_run(tmp_path)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["method"] == "swast-cut" and config["coreset"]["selector"] == "cords.gradmatch"
    assert config["pruner"]["name"] == "rigl" and config["state_preservation"]["enabled"] is True
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_acc"] > 0.8
    for label in ("test accuracy", "density", "coreset size", "training FLOPs", "wall time", "outputs"):
        assert label in result.output


def test_metrics_jsonl_has_one_complete_line_per_epoch(tmp_path):
    result = invoke("run", *QUICK, "--label-noise", "0.2", "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (only_run(tmp_path) / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, 7))
    keys = {"epoch", "phase", "train_loss", "train_ce", "train_kl", "test_acc", "test_loss", "density", "density_layers",
            "coreset_size", "selection_seconds", "train_flops", "relative_flops", "lr"}
    assert all(keys <= set(r) for r in lines)
    assert [r["phase"] for r in lines] == ["warm-up", "warm-up", "coreset", "coreset", "coreset", "coreset"]
    assert all("noisy_share" in r for r in lines if r["phase"] == "coreset")
    assert [r["selection_seconds"] > 0 for r in lines] == [False, False, True, False, True, False]
    flops = [r["train_flops"] for r in lines]
    assert flops == sorted(flops)


def test_plugin_selector_is_used(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    result = invoke("run", *QUICK, "--plugin", "topk_plugin", "--selector", "test.lowest_ids", "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    checkpoint = torch.load(only_run(tmp_path) / "checkpoint.pt", weights_only=False)
    budget = checkpoint["coreset"]["indices"].numel()
    assert torch.equal(checkpoint["coreset"]["indices"], torch.arange(budget))
    assert torch.equal(checkpoint["coreset"]["weights"], torch.full((budget,), 2.0))


def test_plugin_given_as_a_file_path(tmp_path):
    result = invoke("list", "selectors", "--plugin", str(PLUGINS / "topk_plugin.py"))
    assert result.exit_code == 0, result.output
    assert "test.lowest_ids" in result.output and "plugin" in result.output


def test_config_precedence_file_then_flags_then_set(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"train": {"epochs": 5, "lr": 0.01, "batch_size": 16}, "seed": 3}))
    result = invoke("run", "--config", str(config), "--epochs", "4", "--set", "train.epochs=3", "--lr", "0.02",
                    "--warmup", "1", "--interval", "1", "--no-progress", "--output-dir", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((only_run(tmp_path / "out") / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 3  # --set beats the flag and the file
    assert resolved["train"]["lr"] == 0.02  # the flag beats the file
    assert resolved["train"]["batch_size"] == 16 and resolved["seed"] == 3  # the file beats the defaults


def test_written_config_reproduces_the_run(tmp_path):
    first = invoke("run", *QUICK, "--name", "a", "--output-dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    second = invoke("run", "--config", str(tmp_path / "a" / "config.yaml"), "--name", "b")
    assert second.exit_code == 0, second.output
    a = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    drop = ("selection_seconds", "epoch_seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [{k: v for k, v in r.items() if k not in drop} for r in b]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--epochs", "abc"], "'abc' is not a valid integer"),
        (["--coreset", "1.5"], "coreset.fraction (--coreset)"),
        (["--prune-rate", "1.0"], "pruner.rate (--prune-rate)"),
        (["--sp-weight", "-1"], "state_preservation.weight (--sp-weight)"),
        (["--batch-size", "0"], "train.batch_size (--batch-size)"),
        (["--interval", "0"], "coreset.interval (--interval)"),
        (["--epochs", "10", "--warmup", "10"], "must be smaller than train.epochs"),
        (["--method", "swast"], "'swast' is not one of"),
        (["--selector", "gradmatch"], "Did you mean 'cords.gradmatch'?"),
        (["--pruner", "rig"], "Did you mean 'rigl'?"),
        (["--dataset", "digit"], "Did you mean 'digits'?"),
        (["--model", "resnet-18"], "Did you mean 'resnet18'?"),
        (["--set", "train.epoch=3"], "did you mean 'train.epochs'?"),
        (["--set", "coreset.options.selection_typ=PerClass"], "did you mean 'selection_type'?"),
        (["--set", "noequals"], "expected dotted.key=value"),
        (["--plugin", "no_such_module_xyz"], "cannot import module 'no_such_module_xyz'"),
        (["--config", "missing.yaml"], "does not exist"),
        (["--set", "train.epochs=abc"], "train.epochs (--epochs): Input should be a valid integer"),
        (["--set", "coreset.options.switch_at=3", "--selector", "el2n"], "selector 'el2n' rejected its options"),
        (["--device", "tpu"], "device must be auto, cpu, cuda"),
    ],
)
def test_bad_input_gives_one_clear_message_and_exit_code_2(tmp_path, args, expected):
    result = invoke("run", *args, "--output-dir", str(tmp_path), "--no-progress")
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir()), "nothing is written for a run that never started"


def test_a_config_file_that_is_not_yaml_is_reported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    result = invoke("run", "--config", str(bad), "--output-dir", str(tmp_path / "out"))
    assert result.exit_code == 2 and "not valid YAML" in result.output and "Traceback" not in result.output


def test_existing_run_folder_is_not_mixed(tmp_path):
    assert invoke("run", *QUICK, "--name", "x", "--output-dir", str(tmp_path)).exit_code == 0
    again = invoke("run", *QUICK, "--name", "x", "--output-dir", str(tmp_path))
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert invoke("run", *QUICK, "--name", "x", "--output-dir", str(tmp_path), "--overwrite").exit_code == 0


def test_list_shows_every_registry():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("swast-cut", "cords.gradmatch", "el2n", "random", "rigl", "none", "digits", "small_cnn", "resnet18"):
        assert name in result.output


def test_threads_flag_sets_torch_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = invoke("run", *QUICK, "--threads", "1", "--output-dir", str(tmp_path))
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        config = yaml.safe_load((only_run(tmp_path) / "config.yaml").read_text())
        assert config["threads"] == 1
    finally:
        torch.set_num_threads(before)
