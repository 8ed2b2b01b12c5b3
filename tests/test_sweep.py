"""`swast sweep`: the grid, parallel workers, resumption, failures and the `sweep:` section of a config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from swast import sweep as sweeping
from swast.cli import main

PLUGINS = Path(__file__).parent / "plugins"
TINY = ["--epochs", "2", "--warmup", "1", "--interval", "1", "--selector", "random", "--no-progress"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def cell_folders(sweep_dir: Path) -> set[str]:
    return {p.name for p in sweep_dir.iterdir() if p.is_dir() and p.name != sweeping.LOCKS}


def manifest(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / sweeping.MANIFEST).read_text())


def test_grid_is_the_cartesian_product_without_unused_axes(tmp_path):
    grid = sweeping.plan(None, {"method": "full,prune-only,coreset-only,swast-trim,swast-cut", "coreset": "0.01,0.05,0.1",
                                "prune_rate": "0.1,0.3,0.5,0.7,0.9", "seeds": "0,1,2"}, {}, [], tmp_path)
    names = [cell.name for cell in grid.configs]
    # full: seeds only; prune-only: rates x seeds; coreset-only: sizes x seeds; trim and cut: sizes x rates x seeds.
    assert len(names) == len(set(names)) == 3 + 5 * 3 + 3 * 3 + 2 * 3 * 5 * 3
    assert {"full-s2", "prune-only-p0.7-s1", "coreset-only-c0.05-s0", "swast-cut-c0.01-p0.9-s2"} <= set(names)
    assert not any(n.startswith(("full-c", "full-p", "prune-only-c", "coreset-only-c0.1-p")) for n in names)
    cut = grid.configs[sweeping.Cell("swast-cut", 0.01, 0.9, 2)]
    assert (cut.coreset.fraction, cut.pruner.rate, cut.seed, cut.name) == (0.01, 0.9, 2, "swast-cut-c0.01-p0.9-s2")
    assert list(tmp_path.iterdir()) == []  # planning writes nothing


def test_grid_runs_every_cell_with_two_workers(tmp_path):
    # The selector comes from a plugin file, so the worker processes must load plugins too.
    result = invoke("sweep", "--method", "full,coreset-only,swast-trim", "--prune-rate", "0.5,0.9", "--seeds", "0",
                    "--workers", "2", "--sweep-dir", str(tmp_path), *TINY,
                    "--plugin", str(PLUGINS / "topk_plugin.py"), "--selector", "test.lowest_ids")
    assert result.exit_code == 0, result.output
    expected = {"full-s0", "coreset-only-c0.1-s0", "swast-trim-c0.1-p0.5-s0", "swast-trim-c0.1-p0.9-s0"}
    assert cell_folders(tmp_path) == expected
    for name in expected:
        config = yaml.safe_load((tmp_path / name / "config.yaml").read_text())
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        method = name.split("-c")[0].removesuffix("-s0")
        assert config["method"] == summary["method"] == method
        assert summary["selector"] == (None if method == "full" else "test.lowest_ids")
        if method == "swast-trim":
            assert summary["density_fc"] == pytest.approx(1 - config["pruner"]["rate"], abs=0.01)
        assert config["train"]["epochs"] == 2 and config["output_dir"] == str(tmp_path) and config["name"] == name
    assert manifest(tmp_path)["counts"] == {"done": 4, "skipped": 0, "failed": 0, "busy": 0, "pending": 0}
    assert "done 4, skipped 0, failed 0" in result.output


def test_resumed_sweep_skips_finished_cells_and_reruns_unfinished_ones(tmp_path):
    args = ["sweep", "--method", "coreset-only", "--seeds", "0,1", "--sweep-dir", str(tmp_path), *TINY]
    assert invoke(*args).exit_code == 0
    finished = tmp_path / "coreset-only-c0.1-s0" / "summary.json"
    stamp = finished.stat().st_mtime_ns
    interrupted = tmp_path / "coreset-only-c0.1-s1" / "summary.json"
    interrupted.write_text('{"name": "cut off mid-wri')  # what a crash while writing leaves

    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "done 1, skipped 1, failed 0" in result.output
    assert finished.stat().st_mtime_ns == stamp
    assert "test_acc" in json.loads(interrupted.read_text())
    statuses = {c["name"]: c["status"] for c in manifest(tmp_path)["cells"]}
    assert statuses == {"coreset-only-c0.1-s0": "skipped", "coreset-only-c0.1-s1": "done"}

    again = invoke(*args, "--workers", "2")  # nothing left to run: no worker is started
    assert again.exit_code == 0 and "done 0, skipped 2, failed 0" in again.output


def test_a_cell_is_the_run_its_config_yaml_describes(tmp_path):
    assert invoke("sweep", "--method", "swast-cut", "--prune-rate", "0.7", "--sweep-dir", str(tmp_path / "s"), *TINY).exit_code == 0
    cell = tmp_path / "s" / "swast-cut-c0.1-p0.7-s0"
    rerun = invoke("run", "--config", str(cell / "config.yaml"), "--output-dir", str(tmp_path / "r"), "--name", "again")
    assert rerun.exit_code == 0, rerun.output
    lines = [(cell / "metrics.jsonl").read_text(), (tmp_path / "r" / "again" / "metrics.jsonl").read_text()]
    keys = ("epoch", "phase", "train_loss", "test_acc", "test_loss", "density", "relative_flops")
    sweep_epochs, run_epochs = ([{k: json.loads(line)[k] for k in keys} for line in text.splitlines()] for text in lines)
    assert sweep_epochs == run_epochs


def test_finished_cells_of_another_configuration_are_not_skipped_silently(tmp_path):
    args = ["sweep", "--method", "coreset-only", "--sweep-dir", str(tmp_path), *TINY]
    assert invoke(*args).exit_code == 0
    result = invoke(*args, "--set", "train.lr=0.01")
    assert result.exit_code == 2
    assert "coreset-only-c0.1-s0 (train.lr)" in result.output and "another --sweep-dir" in result.output


def test_failing_cell_is_recorded_and_the_others_finish(tmp_path):
    result = invoke("sweep", "--method", "full,coreset-only", "--seeds", "0,1", "--sweep-dir", str(tmp_path),
                    "--plugin", str(PLUGINS / "raising_plugin.py"), *TINY, "--selector", "test.raises")
    assert result.exit_code == 1, result.output
    assert "done 2, skipped 0, failed 2" in result.output
    cells = {c["name"]: c for c in manifest(tmp_path)["cells"]}
    for seed in (0, 1):
        assert cells[f"full-s{seed}"]["status"] == "done"
        assert (tmp_path / f"full-s{seed}" / "summary.json").exists()
        failed = cells[f"coreset-only-c0.1-s{seed}"]
        assert failed["status"] == "failed" and "selector exploded on purpose" in failed["error"]
        trace = (tmp_path / f"coreset-only-c0.1-s{seed}" / sweeping.ERROR_FILE).read_text()
        assert "RuntimeError: selector exploded on purpose" in trace


def test_sweep_section_is_read_by_sweep_and_ignored_by_run(tmp_path):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "train": {"epochs": 2},
        "coreset": {"warmup": 1, "interval": 1, "selector": "random"},
        "logging": {"progress": False},
        "sweep": {"method": ["coreset-only", "swast-cut"], "coreset": [0.1, 0.3], "prune_rate": 0.7, "seeds": [0, 1]},
    }))
    run = invoke("run", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--name", "single")
    assert run.exit_code == 0, run.output
    assert "sweep" not in yaml.safe_load((tmp_path / "runs" / "single" / "config.yaml").read_text())

    grid = sweeping.plan(config, {"method": None, "coreset": "0.3", "prune_rate": None, "seeds": "5"}, {}, [], tmp_path / "s")
    # The flags (--coreset 0.3, --seeds 5) win over the section; the section gives methods and the rate.
    assert sorted(cell.name for cell in grid.configs) == ["coreset-only-c0.3-s5", "swast-cut-c0.3-p0.7-s5"]
    cut = next(cfg for cell, cfg in grid.configs.items() if cell.method == "swast-cut")
    assert (cut.coreset.fraction, cut.pruner.rate, cut.seed, cut.train.epochs) == (0.3, 0.7, 5, 2)
    assert cut.logging.progress is False and cut.output_dir == str(tmp_path / "s")


@pytest.mark.parametrize(
    ("section", "args", "message"),
    [
        ({"prune_rates": [0.5]}, [], "unknown key 'sweep.prune_rates'; did you mean 'sweep.prune_rate'?"),
        (None, ["--coreset", "0,0.1"], "sweep.coreset (--coreset): coreset fractions must lie in (0, 1]"),
        (None, ["--seeds", "1,1"], "sweep.seeds (--seeds): lists a value twice"),
        (None, ["--method", "swast-cat"], "sweep.method (--method)"),
        (None, ["--set", "pruner.rate=0.3"], "'pruner.rate' is set by the sweep for each cell; give it as a sweep axis with --prune-rate"),
        (None, ["--selector", "no.such"], "unknown selector 'no.such'"),
        ("not a mapping", [], "sweep: must be a mapping"),
    ],
)
def test_bad_sweep_input_stops_before_any_cell(tmp_path, section, args, message):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"sweep": section} if section is not None else {}))
    result = invoke("sweep", str(config), "--sweep-dir", str(tmp_path / "s"), "--no-progress", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "s").exists()


def test_a_cell_another_process_is_training_is_left_to_it(tmp_path):
    sweep_dir = tmp_path / "sw"
    args = ["sweep", "--method", "coreset-only", "--seeds", "0,1", "--sweep-dir", str(sweep_dir), *TINY]
    with sweeping.cell_lock(sweep_dir / "coreset-only-c0.1-s1") as ours:  # as a second sweep would hold it
        assert ours
        result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "done 1, skipped 0, failed 0, busy 1" in result.output and "run the command again" in result.output
    assert cell_folders(sweep_dir) == {"coreset-only-c0.1-s0"}
    assert {c["name"]: c["status"] for c in manifest(sweep_dir)["cells"]} == {"coreset-only-c0.1-s0": "done", "coreset-only-c0.1-s1": "busy"}

    again = invoke(*args)  # the lock is released: the cell is trained now, the finished one skipped
    assert again.exit_code == 0, again.output
    assert "done 1, skipped 1, failed 0" in again.output and "busy" not in again.output
