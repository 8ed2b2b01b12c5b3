"""``swast`` command line: run, export, list, sweep, report, analyze.

Bad input of any kind ends with one message naming the field and the fix, exit code 2 and no traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import shutil
import signal
import sys
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from swast import registry
from swast import sweep as sweeping
from swast.config import FLAG_FOR_KEY, FLAGS, METHODS, RunConfig, build_config, dump_yaml
from swast.errors import UsageError
from swast.trainer import Interrupted

console = Console(stderr=True)
out = Console()

CHOICES = {"--method": list(METHODS), "--optimizer": ["sgd", "adam"], "--schedule": ["cosine", "constant"]}


def flag_options(exclude: Collection[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One click option per entry of config.FLAGS (except the config keys in ``exclude``); every flag
    defaults to 'not given'."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for flag in reversed([f for f in FLAGS if f.key not in exclude]):
            dest = flag.key.replace(".", "__")
            if flag.type is bool:
                off = "--no-" + flag.flag.removeprefix("--")
                option = click.option(f"{flag.flag}/{off}", dest, default=None, help=flag.help)
            elif flag.flag in CHOICES:
                option = click.option(flag.flag, dest, type=click.Choice(CHOICES[flag.flag]), default=None, help=flag.help)
            else:
                option = click.option(flag.flag, dest, type=flag.type, default=None, help=flag.help)
            command = option(command)
        return command

    return decorate


def _config_flags(flags: dict[str, Any]) -> dict[str, Any]:
    return {k.replace("__", "."): v for k, v in flags.items()}


def handles_usage_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UsageError as exc:
            if debug:
                raise
            console.print(f"[bold red]Error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            sys.exit(2)

    return click.option("--debug", is_flag=True, help="show full tracebacks")(wrapper)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swast")
def main() -> None:
    """SWaST: train while removing redundant weights and redundant samples at the same time."""


@main.command()
@click.option("--config", "config_file", type=str, default=None, help="YAML config file (presets in configs/)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override any config key, e.g. --set train.epochs=30 (repeatable)")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="import a module (or .py file) whose registrations apply (repeatable)")
@click.option("--overwrite", is_flag=True, help="replace an existing run folder of the same name")
@click.option("--resume", "resume", type=str, default=None, metavar="RUN_DIR", help="continue a stopped run from its newest checkpoint (or a given checkpoint file)")
@flag_options()
@handles_usage_errors
def run(config_file: str | None, sets: tuple[str, ...], plugins: tuple[str, ...], overwrite: bool, resume: str | None, **flags: Any) -> None:
    """Train one run. With no options: SWaST-cut on the embedded digits data (under a minute on a CPU)."""
    settings = _config_flags(flags)
    with reports_training_stops():
        summary = _run(config_file, sets, plugins, overwrite, resume, settings)
    print_summary(summary)


def _run(config_file: str | None, sets: tuple[str, ...], plugins: tuple[str, ...], overwrite: bool, resume: str | None,
         settings: dict[str, Any]) -> dict[str, Any]:
    if resume is not None:
        given = [FLAG_FOR_KEY[k] for k, v in settings.items() if v is not None and k != "logging.progress"]
        given += ["--config"] * bool(config_file) + ["--set"] * bool(sets) + ["--plugin"] * bool(plugins) + ["--overwrite"] * overwrite
        if given:
            raise UsageError(f"--resume continues a run with its own saved configuration; drop {', '.join(sorted(set(given)))}")
        return execute_resume(Path(resume), progress=settings.get("logging.progress"))
    cfg = build_config(config_file, settings, list(sets))
    cfg = cfg.model_copy(update={"plugins": list(dict.fromkeys([*cfg.plugins, *map(plugin_spec, plugins)]))})
    load_plugins(cfg)
    return execute(cfg, prepare_run_dir(cfg, overwrite))


def plugin_spec(spec: str) -> str:
    """A plugin given as a file is recorded with its absolute path, so the saved config works anywhere."""
    return str(Path(spec).resolve()) if spec.endswith(".py") else spec


def load_plugins(cfg: RunConfig) -> None:
    for plugin in cfg.plugins:
        registry.load_plugin(plugin)


def prepare_run_dir(cfg: RunConfig, overwrite: bool) -> Path:
    run_dir = Path(cfg.output_dir) / str(cfg.name)
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise UsageError(
                f"run folder '{run_dir}' already holds a run; continue it with --resume {run_dir}, "
                "replace it with --overwrite, or choose another --name"
            )
        shutil.rmtree(run_dir)
    return run_dir


def execute(cfg: RunConfig, run_dir: Path, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build everything (validating names, options and data first), train, and write the outputs.
    With ``state`` (a checkpoint), continue that run instead of starting it."""
    from swast.loggers import RunLog, WandbSink
    from swast.trainer import Trainer

    trainer = Trainer(cfg, run_dir)  # validates names, options and data before anything is written
    if state is not None:
        trainer.load_state_dict(state)
        console.print(f"Resuming '{cfg.name}' after epoch {state['epoch']}" + (" (mid-epoch)" if state["progress"] else ""), highlight=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_yaml(cfg))
    wandb = WandbSink(run_dir, str(cfg.name), cfg.logging.wandb_project, cfg.model_dump()) if cfg.logging.wandb else None
    trainer.log = RunLog(run_dir, wandb, history=trainer.history)
    with _progress(cfg.logging.progress) as progress, stop_on_signals(trainer):
        task = progress.add_task(f"{cfg.method} on {cfg.data.dataset}", total=cfg.train.epochs, completed=trainer.epoch, status="")

        def on_epoch(record: dict[str, Any]) -> None:
            acc = "" if record["test_acc"] is None else f"  acc {record['test_acc']:.3f}"
            progress.update(task, advance=1, status=f"{record['phase']:>7}{acc}  density {record['density']:.2f}")

        summary = trainer.fit(on_epoch)
    trainer.log.finish(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def execute_resume(path: Path, progress: bool | None = None) -> dict[str, Any]:
    from swast import checkpoint
    from swast.config import validate

    state = checkpoint.load(path)
    cfg = validate(state["config"])
    if progress is not None:
        cfg = cfg.model_copy(update={"logging": cfg.logging.model_copy(update={"progress": progress})})
    load_plugins(cfg)
    return execute(cfg, path if path.is_dir() else path.parent, state)


@contextlib.contextmanager
def stop_on_signals(trainer: Any) -> Iterator[None]:
    """Ctrl-C or SIGTERM asks the trainer to stop after the current batch (it then saves a checkpoint and
    raises ``Interrupted``); a second Ctrl-C quits at once, leaving the last checkpoint."""

    def request_stop(signum: int, _frame: Any) -> None:
        if trainer.stop_requested:
            signal.signal(signum, signal.SIG_DFL)
            raise KeyboardInterrupt
        trainer.stop_requested = signal.Signals(signum).name
        console.print("[yellow]Stopping after the current batch to save a checkpoint; press Ctrl-C again to quit at once.[/]", soft_wrap=True)

    handlers = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def sigterm_reaches_workers(received: list[int]) -> Iterator[None]:
    """A terminal's Ctrl-C reaches every process of the sweep, but SIGTERM (``kill``, a batch scheduler) only
    the one it is sent to: pass it on to the worker processes, so that each checkpoints its cell and stops as
    a run does. Without workers it stops the sweep between cells (a cell in progress handles it itself)."""

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        workers = multiprocessing.active_children()
        for worker in workers:
            if worker.pid is not None:
                os.kill(worker.pid, signum)
        if not workers:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def reports_training_stops() -> Iterator[None]:
    """Turn a run that stopped on purpose (a signal, a non-finite loss) into a message and an exit code."""
    from swast.trainer import Interrupted, NonFiniteLoss

    try:
        yield
    except Interrupted as stop:
        console.print(
            f"[yellow]Stopped by {stop.signal_name} in epoch {stop.epoch} after batch {stop.batch}.[/] "
            f"Checkpoint: {stop.path}\nResume with: swast run --resume {stop.path.parent}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(128 + int(getattr(signal, stop.signal_name)))
    except NonFiniteLoss as bad:
        last = f"the last good checkpoint is {bad.last_checkpoint}" if bad.last_checkpoint else "no checkpoint was written yet"
        console.print(
            f"[bold red]Error:[/] {bad}; the run stopped rather than train on NaNs; {last}. "
            "Lower --lr (then --resume or start again) or set train.nonfinite=skip to skip such batches.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


def _progress(enabled: bool, unit: str = "epochs") -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not enabled,
        transient=False,
    )


def print_summary(s: dict[str, Any]) -> None:
    table = Table(title=f"swast run: {s['name']}", show_header=False, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value")
    table.add_row("method", f"{s['method']} (selector: {s['selector'] or '-'}, pruner: {s['pruner']})")
    table.add_row("test accuracy", f"{100 * s['test_acc']:.2f}%  (best {100 * s['best_test_acc']:.2f}%)")
    table.add_row("density overall / FC / backbone", f"{s['density']:.3f} / {s['density_fc']:.3f} / {s['density_backbone']:.3f}")
    table.add_row("parameters kept", f"{s['params_kept']:,} of {s['params_total']:,} ({s['params_kept'] / s['params_total']:.3f})")
    share = s["coreset_size"] / s["train_size"]
    table.add_row("coreset size", f"{s['coreset_size']} of {s['train_size']} samples ({100 * share:.1f}%)")
    table.add_row("training FLOPs vs dense full-data", f"{s['relative_flops']:.3f}x")
    table.add_row("wall time", f"{s['wall_seconds']:.1f} s (selection {s['selection_seconds']:.1f} s)")
    table.add_row("outputs", f"{s['run_dir']}/ (config.yaml, metrics.jsonl, summary.json, checkpoint.pt)")
    out.print(table)
    for warning in s["warnings"]:
        console.print(f"[yellow]Note:[/] {warning}", highlight=False, soft_wrap=True)


@main.command(name="export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--output", type=click.Path(path_type=Path), default=None, help="where to write the model (default RUN_DIR/export/model.pt)")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="batch of the CPU latency measurement")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="timed forward passes (the median is shown)")
@handles_usage_errors
def export_command(run_dir: Path, output: Path | None, batch_size: int, repeats: int) -> None:
    """Write a finished run's model in its smallest real form; print parameters, MACs and CPU latency before/after."""
    from swast.export import export_run, report_table

    out.print(report_table(export_run(run_dir, output, batch_size, repeats)))


@main.command(name="list")
@click.argument("kind", required=False, type=click.Choice(["selectors", "pruners", "datasets", "models", "methods"]))
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="also list what this module registers (repeatable)")
@handles_usage_errors
def list_command(kind: str | None, plugins: tuple[str, ...]) -> None:
    """Show what is registered: selectors, pruners, datasets, models and methods."""
    for plugin in plugins:
        registry.load_plugin(plugin)
    kinds = [kind] if kind else ["methods", *registry.ALL]
    for name in kinds:
        table = Table(title=name, title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("description")
        if name == "methods":
            for method, preset in METHODS.items():
                table.add_row(method, preset.description)
        else:
            table.add_column("source")
            for entry in registry.ALL[name].entries():
                table.add_row(entry.name, entry.description, entry.source)
        out.print(table)


@main.command()
@click.argument("config_file", required=False)
@click.option("--method", "method", metavar="LIST", help="methods, comma-separated (sweep.method); default: the config's method")
@click.option("--coreset", "coreset", metavar="LIST", help="coreset fractions, e.g. 0.01,0.05,0.1 (sweep.coreset)")
@click.option("--prune-rate", "prune_rate", metavar="LIST", help="prune rates, e.g. 0.1,0.3,0.5,0.7,0.9 (sweep.prune_rate)")
@click.option("--seeds", "seeds", metavar="LIST", help="seeds, e.g. 0,1,2 (sweep.seeds)")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="cells trained in parallel (worker processes)")
@click.option("--sweep-dir", type=str, default=None, help="folder of the cells' run folders [default: sweeps/CONFIG_FILE-stem, or sweeps/default]")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override any other config key (repeatable)")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="import a module (or .py file) whose registrations apply (repeatable)")
@flag_options(exclude=sweeping.SWEEP_OWNED_KEYS)
@handles_usage_errors
def sweep(config_file: str | None, method: str | None, coreset: str | None, prune_rate: str | None, seeds: str | None,
          workers: int, sweep_dir: str | None, sets: tuple[str, ...], plugins: tuple[str, ...], **flags: Any) -> None:
    """Run a grid of methods x coreset sizes x prune rates x seeds, one run folder per cell; resumable."""
    for plugin in plugins:
        registry.load_plugin(plugin)
    axes = {"method": method, "coreset": coreset, "prune_rate": prune_rate, "seeds": seeds}
    grid = sweeping.plan(config_file, axes, _config_flags(flags), list(sets), sweep_dir, plugins)
    received: list[int] = []
    try:
        with sigterm_reaches_workers(received):
            counts = sweeping.run(grid, workers, _progress(grid.progress, unit="cells"))
    except (KeyboardInterrupt, Interrupted) as stop:
        console.print(
            "[yellow]Sweep interrupted.[/] Run the same command again: finished cells are skipped and an "
            "interrupted cell continues from its checkpoint.", highlight=False, soft_wrap=True,
        )
        if received:  # SIGTERM, passed on to the workers
            signum = received[-1]
        elif isinstance(stop, Interrupted):  # a cell in this process stopped on a signal
            signum = getattr(signal, stop.signal_name)
        else:  # Ctrl-C between cells
            signum = signal.SIGINT
        sys.exit(128 + int(signum))
    out.print(f"sweep {grid.directory}: {len(grid.configs)} cells, done {counts['done']}, skipped {counts['skipped']}, "
              f"failed {counts['failed']}" + (f", busy {counts['busy']}" if counts["busy"] else ""), highlight=False)
    if counts["busy"]:
        out.print("busy: cells another process was training; run the command again once it finished to include them",
                  highlight=False)
    if counts["failed"]:
        out.print(f"errors: {grid.directory / sweeping.MANIFEST} and each failed cell's {sweeping.ERROR_FILE}", highlight=False)
        sys.exit(1)


@main.command()
@click.argument("sweep_dir")
@click.option("--out", "out_dir", default=None, help="where the table and figures go [default: SWEEP_DIR/report]")
@handles_usage_errors
def report(sweep_dir: str, out_dir: str | None) -> None:
    """Table 1 (Markdown, CSV) and the paper's Fig. 5/6 panels (PNG) from a folder of finished runs."""
    from swast.report import write_report

    written, notes = write_report(Path(sweep_dir), Path(out_dir) if out_dir else Path(sweep_dir) / "report")
    for note in notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    for path in written:
        out.print(f"wrote {path}", highlight=False)


@main.group()
def analyze() -> None:
    """Analyses of the paper that need no training."""


@analyze.command()
@click.option("--out", "out_dir", default="runs/runge", show_default=True, help="folder for runge.png and runge.json")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the Gaussian noise and of the search starts")
@handles_usage_errors
def runge(out_dir: str, seed: int) -> None:
    """Figure 1: pruning fits to noisy vs clean Runge samples, and selection difficulty vs degree."""
    from swast.analysis.runge import write_runge

    for path in write_runge(Path(out_dir), seed):
        out.print(f"wrote {path}", highlight=False)


if __name__ == "__main__":
    main()
