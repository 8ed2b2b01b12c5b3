"""The README stays true: every flag is documented and the selector example runs as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from swast.cli import main
from swast.config import FLAGS

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_flag_is_in_the_readme_table():
    for flag in FLAGS:
        assert f"`{flag.flag}" in README and f"`{flag.key}`" in README, flag.flag


def test_readme_selector_example_runs_as_a_plugin(tmp_path, monkeypatch):
    code = re.search(r"```python\n# my_selectors.py\n(.*?)```", README, re.S)
    assert code is not None
    (tmp_path / "my_selectors.py").write_text(code.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    command = re.search(r"swast run --plugin my_selectors (.*)", README)
    assert command is not None
    args = ["run", "--plugin", "my_selectors", *command.group(1).split(), "--epochs", "4", "--warmup", "1",
            "--no-progress", "--output-dir", str(tmp_path / "runs"), "--name", "example"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = (tmp_path / "runs" / "example" / "config.yaml").read_text()
    assert "my.least_confident" in config and "temperature: 2" in config
    summary = json.loads((tmp_path / "runs" / "example" / "summary.json").read_text())
    assert summary["selector"] == "my.least_confident"
