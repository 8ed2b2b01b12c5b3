"""Registries: decorators, closest-match errors, option checking and entry-point discovery."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest

import swast
from swast import registry
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


def test_entry_point_selectors_are_discovered(tmp_path, monkeypatch):
    """A real installed distribution (a dist-info folder on sys.path) registering via swast.selectors."""
    package = tmp_path / "thirdparty_sel"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        import torch

        class Every2nd:
            """Every second sample id."""

            def select(self, ctx):
                return torch.arange(0, 2 * ctx.budget, 2)
    '''))
    dist = tmp_path / "thirdparty_sel-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-sel\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[swast.selectors]\nthirdparty.every2nd = thirdparty_sel:Every2nd\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    fresh = registry.Registry("selector", "swast.selectors")
    cls = fresh.get("thirdparty.every2nd")
    assert cls.__name__ == "Every2nd"
    entry = next(e for e in fresh.entries() if e.name == "thirdparty.every2nd")
    assert entry.source == "entry point (thirdparty-sel)"
    sys.modules.pop("thirdparty_sel", None)


def test_a_broken_plugin_is_reported(tmp_path):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UsageError, match="importing .* failed: RuntimeError: boom"):
        registry.load_plugin(str(bad))
