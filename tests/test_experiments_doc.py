"""docs/EXPERIMENTS.md stays true: every option of the experiment commands is documented, and the
example command's cell count is what `swast sweep` plans."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from swast import sweep as sweeping
from swast.cli import main

DOC = (Path(__file__).parents[1] / "docs" / "EXPERIMENTS.md").read_text()


def test_every_option_of_the_experiment_commands_is_documented():
    analyze = main.commands["analyze"]
    assert isinstance(analyze, click.Group)
    commands = {"sweep": main.commands["sweep"], "report": main.commands["report"], "analyze runge": analyze.commands["runge"]}
    own = {"--method", "--coreset", "--prune-rate", "--seeds", "--workers", "--sweep-dir", "--set", "--plugin", "--out", "--seed", "--progress"}
    for name, command in commands.items():
        assert f"swast {name}" in DOC
        for param in command.params:
            for opt in param.opts:
                if opt in own:
                    assert f"`{opt}" in DOC or f"[{opt}" in DOC, f"{name} {opt}"


def test_the_documented_example_has_the_documented_cell_count(tmp_path):
    example = re.search(r"swast sweep configs/digits-sweep.yaml (--coreset .*?)--workers", DOC, re.S)
    assert example is not None
    args = dict(re.findall(r"--([a-z-]+) (\S+)", example.group(1)))
    axes = {"coreset": args["coreset"], "prune_rate": args["prune-rate"], "method": args["method"], "seeds": args["seeds"]}
    grid = sweeping.plan(Path(__file__).parents[1] / "configs" / "digits-sweep.yaml", axes, {}, [], tmp_path)
    assert len(grid.configs) == 99 and "= 99 cells" in DOC
    preset = sweeping.plan(Path(__file__).parents[1] / "configs" / "digits-sweep.yaml", {k: None for k in axes}, {}, [], tmp_path)
    assert len(preset.configs) == 117 and "117 cells" in (Path(__file__).parents[1] / "configs" / "digits-sweep.yaml").read_text()


@pytest.mark.parametrize("folder, rows_expected", [
    ("fashion-mnist", 8),  # three blocks: 2 + 2 + 1 accuracy rows and their parameter rows
    ("fashion-mnist-wide", 4),  # two blocks of one accuracy row (the 1% coreset) and its parameter row
])
def test_the_measured_table_in_the_docs_is_the_one_swast_report_wrote(folder, rows_expected):
    """The evidence section quotes docs/figures/*/table1.md; regenerating a report must not leave the
    prose behind."""
    written = (Path(__file__).parents[1] / "docs" / "figures" / folder / "table1.md").read_text()
    rows = [line for line in written.splitlines() if line.startswith("| small_cnn")]
    assert len(rows) == rows_expected
    for row in rows:
        assert row in DOC, row


def test_every_figure_the_docs_show_exists():
    figures = re.findall(r"\]\((figures/[^)]+)\)", DOC)
    assert figures
    for figure in figures:
        assert (Path(__file__).parents[1] / "docs" / figure).is_file(), figure
