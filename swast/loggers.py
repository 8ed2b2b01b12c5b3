"""Where metrics go: one JSON line per epoch in the run folder (always), and W&B when asked.

W&B is offline unless WANDB_MODE says otherwise, so it never needs a network or an account, and any
W&B failure is reported once and the run goes on with its local log.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out


class WandbSink:
    def __init__(self, run_dir: Path, name: str, project: str, config: dict[str, Any]) -> None:
        self.run: Any = None
        self.failed = False
        try:
            import wandb

            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", project),
                name=name,
                # One W&B run per run folder, so a resumed run continues the same W&B run.
                id=hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16],
                resume="allow",
                dir=str(run_dir),
                config=config,
                mode=os.environ.get("WANDB_MODE", "offline"),
                settings=wandb.Settings(silent=True, console="off"),
            )
        except Exception as exc:  # noqa: BLE001 - W&B must never stop a run
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if not self.failed:
            warnings.warn(f"W&B logging disabled for this run ({type(exc).__name__}: {exc}); metrics.jsonl has everything", stacklevel=3)
        self.failed = True
        self.run = None
        _teardown()

    def log(self, record: dict[str, Any], step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log(flatten(record), step=step)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.summary.update(flatten(summary))
            self.run.finish()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            _teardown()


def _teardown() -> None:
    """Stop W&B's background service now: left to its atexit hook, its teardown can crash the
    interpreter at exit (seen with wandb 0.31 after an offline run)."""
    try:
        import wandb

        wandb.teardown()
    except Exception:  # noqa: BLE001
        pass


class RunLog:
    def __init__(self, run_dir: Path, wandb: WandbSink | None = None, history: list[dict[str, Any]] | None = None) -> None:
        """``history``: epochs already done (a resumed run); the file is rewritten to exactly those, so
        an epoch logged after the last checkpoint and then repeated is not logged twice."""
        self.path = run_dir / "metrics.jsonl"
        self.wandb = wandb
        self.path.write_text("".join(json.dumps(record) + "\n" for record in history or []))

    def log(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb is not None:
            self.wandb.log(record, step=int(record["epoch"]))

    def finish(self, summary: dict[str, Any]) -> None:
        if self.wandb is not None:
            self.wandb.finish(summary)
