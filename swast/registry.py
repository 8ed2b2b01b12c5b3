"""Name -> implementation registries (timm-style decorators), fed by built-ins, entry points and plugins.

Every swappable part of a run (selector, pruner, dataset, model) is looked up here by the name a user
types, so the training core never imports an implementation directly.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from swast.errors import UsageError

T = TypeVar("T")

_current_source: list[str] = []


@contextlib.contextmanager
def registering_from(source: str) -> Iterator[None]:
    """Tag registrations made while importing third-party code with where they came from."""
    _current_source.append(source)
    try:
        yield
    finally:
        _current_source.pop()


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str
    source: str


def _first_doc_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _same_definition(a: Any, b: Any) -> bool:
    """The same class re-imported (a plugin loaded twice, once by module name and once by path)."""
    if a is b:
        return True
    try:
        return bool(a.__qualname__ == b.__qualname__ and inspect.getfile(a) == inspect.getfile(b))
    except (AttributeError, TypeError):
        return False


def closest(name: str, known: list[str]) -> str | None:
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return matches[0] if matches else None


class Registry:
    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._entry_points_loaded = False

    def register(self, name: str, *, description: str | None = None) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj, description=description)
            return obj

        return decorator

    def add(self, name: str, obj: Any, *, description: str | None = None, source: str | None = None) -> None:
        if source is None:
            module = getattr(obj, "__module__", "") or ""
            if _current_source:
                source = _current_source[-1]
            elif module == "swast" or module.startswith("swast."):
                source = "built-in"
            else:
                source = f"module {module}"
        existing = self._entries.get(name)
        if existing is not None and not _same_definition(existing.obj, obj):
            raise UsageError(
                f"{self.kind} name '{name}' is already registered ({existing.source}); "
                f"choose another name for {getattr(obj, '__qualname__', obj)!r}"
            )
        self._entries[name] = Entry(name, obj, description or _first_doc_line(obj), source)

    def get(self, name: str, *, field: str | None = None) -> Any:
        self._load_entry_points()
        if name in self._entries:
            return self._entries[name].obj
        known = sorted(self._entries)
        hint = closest(name, known)
        where = f"{field}: " if field else ""
        message = f"{where}unknown {self.kind} '{name}'. Known: {', '.join(known) or '(none)'}."
        if hint:
            message += f" Did you mean '{hint}'?"
        raise UsageError(message)

    def create(self, name: str, options: dict[str, Any], *, field: str, options_field: str) -> Any:
        """Instantiate the class registered as ``name`` with user options, checking them against its
        signature first so a typo is reported with the valid choices instead of a TypeError."""
        cls = self.get(name, field=field)
        try:
            params = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            params = {}
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        valid = [p for p in params if params[p].kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for key in options:
            if not takes_any and key not in valid:
                hint = closest(key, valid)
                raise UsageError(
                    f"{options_field}: {self.kind} '{name}' has no option '{key}'"
                    + (f"; did you mean '{hint}'?" if hint else ".")
                    + f" Valid options: {', '.join(valid) or '(none)'}."
                )
        try:
            return cls(**options)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{options_field}: {self.kind} '{name}' rejected its options: {exc}") from exc

    def entries(self) -> list[Entry]:
        self._load_entry_points()
        return [self._entries[name] for name in sorted(self._entries)]

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries()]

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def _load_entry_points(self) -> None:
        _load_builtins()
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        self._entry_points_loaded = True
        for ep in importlib.metadata.entry_points(group=self.entry_point_group):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            source = f"entry point ({dist})"
            try:
                with registering_from(source):
                    obj = ep.load()
            except Exception as exc:  # a broken third-party package must not break every run
                raise UsageError(
                    f"the {self.kind} entry point '{ep.name} = {ep.value}' from {dist} failed to load: "
                    f"{type(exc).__name__}: {exc}. Fix or uninstall that package."
                ) from exc
            if ep.name not in self._entries:
                self.add(ep.name, obj, source=source)


# Importing these modules runs their @register decorators; done on first lookup, not at `import swast`.
_BUILTIN_MODULES = ("swast.data.datasets", "swast.models.zoo", "swast.pruning", "swast.adapters")
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


selectors = Registry("selector", "swast.selectors")
pruners = Registry("pruner", "swast.pruners")
datasets = Registry("dataset", "swast.datasets")
models = Registry("model", "swast.models")

ALL = {"selectors": selectors, "pruners": pruners, "datasets": datasets, "models": models}


def register_selector(name: str, *, description: str | None = None) -> Callable[[T], T]:
    """Class decorator: make a selector available as ``--selector NAME``."""
    return selectors.register(name, description=description)


def register_pruner(name: str, *, description: str | None = None) -> Callable[[T], T]:
    """Class decorator: make a pruner available as ``--pruner NAME``."""
    return pruners.register(name, description=description)


def load_plugin(spec: str) -> None:
    """Import a user module (dotted name or path to a .py file) so that its registrations apply."""
    source = f"plugin {spec}"
    try:
        with registering_from(source):
            if spec.endswith(".py"):
                path = Path(spec)
                if not path.is_file():
                    raise UsageError(f"--plugin: file '{spec}' does not exist")
                module_name = f"swast_plugin_{path.stem}"
                file_spec = importlib.util.spec_from_file_location(module_name, path)
                assert file_spec is not None and file_spec.loader is not None
                module = importlib.util.module_from_spec(file_spec)
                sys.modules[module_name] = module
                file_spec.loader.exec_module(module)
            else:
                importlib.import_module(spec)
    except UsageError:
        raise
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"--plugin: cannot import module '{spec}' ({exc}). Give an importable dotted module name "
            "(on PYTHONPATH or installed) or a path to a .py file."
        ) from exc
    except Exception as exc:
        raise UsageError(f"--plugin: importing '{spec}' failed: {type(exc).__name__}: {exc}") from exc
