"""Registries: decorators, closest-match errors, option checking and entry-point discovery."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import swast
from swast import registry
from swast.cli import main
from swast.data.datasets import build_digits
from swast.errors import UsageError


def test_unknown_name_lists_known_ones_and_the_closest():
    with pytest.raises(UsageError) as info:
        registry.selectors.get("el2m")
    message = str(info.value)
    known = registry.selectors.names()
    assert {"cords.gradmatch", "el2n", "random"} <= set(known) and known == sorted(known)
    assert f"Known: {', '.join(known)}." in message and "Did you mean 'el2n'?" in message


def test_register_selector_decorator_and_duplicate_names():
    @swast.register_selector("test.decorated")
    class Decorated:
        """One-line description."""

        def select(self, ctx):
            return []

    assert registry.selectors.get("test.decorated") is Decorated
    entry = next(e for e in registry.selectors.entries() if e.name == "test.decorated")
    assert entry.description == "One-line description." and entry.source.startswith("module ")
    with pytest.raises(UsageError, match="already registered"):
        swast.register_selector("test.decorated")(type("Other", (), {}))


def test_options_are_checked_against_the_constructor():
    with pytest.raises(UsageError, match="has no option 'switch'; did you mean 'switch_at'"):
        registry.selectors.create("el2n", {"switch": 0.3}, field="f", options_field="coreset.options")
    with pytest.raises(UsageError, match="rejected its options"):
        registry.selectors.create("el2n", {"switch_at": 3.0}, field="f", options_field="coreset.options")
    assert registry.selectors.create("el2n", {"switch_at": None}, field="f", options_field="o").switch_at is None


def test_an_installed_package_registers_a_selector_by_entry_point(tmp_path, monkeypatch):
    """The example package in examples/, installed by pip (no network: no dependencies, no build isolation)."""
    package = Path(__file__).parents[1] / "examples" / "swast-example-selectors"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(package)], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry.selectors, "_entry_points_loaded", False)
    entry = next(e for e in registry.selectors.entries() if e.name == "example.class_balanced_random")
    assert entry.source == "entry point (swast-example-selectors)"
    result = CliRunner().invoke(main, ["run", "--selector", "example.class_balanced_random", "--epochs", "4", "--warmup", "1",
                                       "--no-progress", "--output-dir", str(tmp_path / "runs"), "--name", "ep"])
    assert result.exit_code == 0, result.output
    coreset = torch.load(tmp_path / "runs" / "ep" / "checkpoint.pt", weights_only=False)["coreset"]["indices"]
    labels = build_digits(None, 0.1, 0).train.labels[coreset]
    assert torch.bincount(labels, minlength=10).min() >= len(coreset) // 10  # class-balanced, as the package says
    sys.modules.pop("swast_example_selectors", None)


def test_a_broken_plugin_is_reported(tmp_path):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UsageError, match="importing .* failed: RuntimeError: boom"):
        registry.load_plugin(str(bad))
