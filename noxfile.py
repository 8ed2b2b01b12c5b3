"""Sessions: `tests` (what CI runs), `slow` (long end-to-end runs), `bench` (speed targets)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"

PYTHON = "3.11"
# The torch/torchvision pair that installs (and imports) together on the project's machines.
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


def install(session: nox.Session) -> None:
    session.install(*TORCH)
    session.install("-e", ".[test]")
    # CORDS 0.0.4 pins packages that no longer exist; its real imports come with swast's dependencies.
    session.install("--no-deps", "-r", "requirements/cords.txt")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Fast offline CPU test suite."""
    install(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """Tests marked slow (longer end-to-end runs)."""
    install(session)
    session.run("pytest", "-q", "-m", "slow", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed benchmarks; results land in benchmarks/results/."""
    install(session)
    session.run("python", "benchmarks/epoch_time.py", *session.posargs)
    session.run("python", "benchmarks/structured_speedup.py")
    session.run("python", "benchmarks/selection_time.py", "--datasets", "digits")
    session.run("python", "benchmarks/selection_time.py", "--datasets", "fashion-mnist", "--repeats", "3")
