"""Run configuration: one typed, validated tree built from defaults < method preset < YAML < flags < --set.

Everything that can change a number is a key here, so the resolved tree written next to the results is a
complete record of the run. Validation happens before any work starts and names the key, the flag and
the fix.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from swast.errors import UsageError
from swast.registry import closest

MethodName = Literal["full", "coreset-only", "prune-only", "swast-trim", "swast-cut"]
PruneScope = Literal["none", "fc", "backbone"]


@dataclass(frozen=True)
class Method:
    """A named method is a preset of three switches of the one SWaST loop."""

    coreset: bool
    prune_scope: PruneScope
    state_preservation: bool
    description: str


METHODS: dict[str, Method] = {
    "full": Method(False, "none", False, "dense model trained on all data (baseline)"),
    "coreset-only": Method(True, "none", False, "dense model trained on coresets (baseline)"),
    "prune-only": Method(False, "backbone", False, "backbone pruned at the prune rate, FC at fc_sparsity, all data (baseline)"),
    "swast-trim": Method(True, "fc", False, "coresets + only the FC layer pruned at the prune rate"),
    "swast-cut": Method(True, "backbone", True, "coresets + backbone pruned at the prune rate, FC at fc_sparsity, state preservation"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataConfig(_Section):
    dataset: str = "digits"
    root: str | None = None
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    split_seed: int = 0
    label_noise: float = Field(0.0, ge=0.0, lt=1.0)
    noise_type: Literal["symmetric", "asymmetric"] = "symmetric"
    subset: int | float | None = None
    num_workers: int = Field(0, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("subset", mode="before")
    @classmethod
    def _count_or_fraction(cls, value: Any) -> Any:
        """An integer is a sample count, a float a share of the training split (so 1 and 1.0 differ)."""
        if isinstance(value, str):  # from the --subset flag
            with contextlib.suppress(yaml.YAMLError):
                value = yaml.safe_load(value)
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
            isinstance(value, float) and 0.0 < value <= 1.0
        )
        if not ok:
            raise ValueError("must be a sample count (an integer >= 1) or a fraction in (0, 1]")
        return value


class ModelConfig(_Section):
    name: str = "small_cnn"
    options: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(_Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    schedule: Literal["cosine", "constant"] = "cosine"
    nonfinite: Literal["stop", "skip"] = "stop"


class CoresetConfig(_Section):
    enabled: bool | None = None
    selector: str = "cords.gradmatch"
    fraction: float = Field(0.1, gt=0.0, le=1.0)
    warmup: int | None = Field(None, ge=0)
    interval: int = Field(5, ge=1)
    warmup_mode: Literal["continuous", "cords_skip"] = "continuous"
    kappa: float = Field(0.5, gt=0.0, le=1.0)
    use_weights: bool = True
    options: dict[str, Any] = Field(default_factory=dict)


class PrunerConfig(_Section):
    name: str = "rigl"
    rate: float = Field(0.5, ge=0.0, lt=1.0)
    scope: PruneScope | None = None
    fc_sparsity: float = Field(0.9, ge=0.0, lt=1.0)
    distribution: Literal["erk", "uniform"] = "erk"
    dense_first_layer: bool = True
    # Glob pattern on weight (or module) names -> sparsity that layer is held at; part of the layer-wise plan.
    overrides: dict[str, Annotated[float, Field(ge=0.0, lt=1.0)]] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class StatePreservationConfig(_Section):
    enabled: bool | None = None
    weight: float = Field(0.1, ge=0.0)
    temperature: float = Field(1.0, gt=0.0)
    scope: Literal["all", "correct"] = "all"


class CheckpointConfig(_Section):
    interval: int = Field(1, ge=0)
    keep: int = Field(1, ge=1)


class LoggingConfig(_Section):
    eval_every: int = Field(1, ge=1)
    wandb: bool = False
    wandb_project: str = "swast"
    progress: bool = True


class RunConfig(_Section):
    name: str | None = None
    output_dir: str = "runs"
    method: MethodName = "swast-cut"
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(None, ge=1)
    plugins: list[str] = Field(default_factory=list)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    coreset: CoresetConfig = Field(default_factory=CoresetConfig)
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    state_preservation: StatePreservationConfig = Field(default_factory=StatePreservationConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _check_cross_fields(self) -> RunConfig:
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got '{self.device}'")
        scope = self.pruner.scope or METHODS[self.method].prune_scope
        if self.pruner.overrides and (scope == "none" or self.pruner.name == "none"):
            raise ValueError(
                f"pruner.overrides is set but this run prunes nothing (method {self.method}, pruner.scope "
                f"{scope}, pruner.name {self.pruner.name}); remove the overrides or choose a pruning method"
            )
        coreset_on = self.coreset.enabled if self.coreset.enabled is not None else METHODS[self.method].coreset
        warmup = self.coreset.warmup
        if coreset_on and warmup is not None and warmup >= self.train.epochs:
            raise ValueError(
                f"coreset.warmup (--warmup) is {warmup} but must be smaller than train.epochs "
                f"(--epochs, {self.train.epochs}): no epoch would be left for coreset training"
            )
        return self

    def resolved(self) -> RunConfig:
        """Fill every 'decided by the method' value, so the written config has no open choice left."""
        method = METHODS[self.method]
        data = self.model_dump()
        coreset, pruner, sp = data["coreset"], data["pruner"], data["state_preservation"]
        if coreset["enabled"] is None:
            coreset["enabled"] = method.coreset
        if coreset["warmup"] is None:
            coreset["warmup"] = default_warmup(self.train.epochs, self.coreset.fraction)
        if pruner["scope"] is None:
            pruner["scope"] = method.prune_scope
        if sp["enabled"] is None:
            sp["enabled"] = method.state_preservation
        if data["name"] is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            data["name"] = f"{self.method}-{self.data.dataset}-{self.model.name}-s{self.seed}-{stamp}"
        return RunConfig.model_validate(data)

    @property
    def prunes(self) -> bool:
        """Whether the run prunes at all: a pruned scope and a pruner other than 'none'."""
        return self.pruner.scope not in (None, "none") and self.pruner.name != "none"


def default_warmup(epochs: int, fraction: float) -> int:
    """K = ceil(T * fraction / 2), "following GradMatch" (T=300, 10% gives 15), kept below T."""
    return min(math.ceil(epochs * fraction / 2), epochs - 1)


@dataclass(frozen=True)
class Flag:
    """A CLI flag and the config key it sets: one table drives the options, their help and the errors."""

    flag: str
    key: str
    type: Any
    help: str


FLAGS: list[Flag] = [
    Flag("--method", "method", str, "full | coreset-only | prune-only | swast-trim | swast-cut"),
    Flag("--selector", "coreset.selector", str, "coreset selector name (see `swast list selectors`)"),
    Flag("--pruner", "pruner.name", str, "pruner name (see `swast list pruners`); 'none' keeps the model dense"),
    Flag("--dataset", "data.dataset", str, "dataset name (see `swast list datasets`)"),
    Flag("--data-root", "data.root", str, "folder holding the dataset files"),
    Flag("--model", "model.name", str, "model name (see `swast list models`)"),
    Flag("--epochs", "train.epochs", int, "T: total training epochs"),
    Flag("--warmup", "coreset.warmup", int, "K: warm-up epochs on the full data (default ceil(T*coreset/2))"),
    Flag("--interval", "coreset.interval", int, "R: select a new coreset every R epochs"),
    Flag("--coreset", "coreset.fraction", float, "coreset size as a fraction of the training set, in (0, 1]"),
    Flag("--prune-rate", "pruner.rate", float, "fraction of weights removed in the pruned scope, in [0, 1)"),
    Flag("--sp-weight", "state_preservation.weight", float, "lambda: weight of the state-preservation KL term"),
    Flag("--sp", "state_preservation.enabled", bool, "state preservation on/off (default: by method)"),
    Flag("--label-noise", "data.label_noise", float, "share of training labels replaced by a wrong class"),
    Flag("--noise-type", "data.noise_type", str, "symmetric (any other class) | asymmetric (class flips, see docs/DATASETS.md)"),
    Flag("--subset", "data.subset", str, "train on a class-stratified sample: a count (>= 1) or a fraction in (0, 1]"),
    Flag("--seed", "seed", int, "random seed (model init, noise, selection, batches)"),
    Flag("--batch-size", "train.batch_size", int, "minibatch size"),
    Flag("--lr", "train.lr", float, "initial learning rate"),
    Flag("--optimizer", "train.optimizer", str, "sgd | adam"),
    Flag("--schedule", "train.schedule", str, "cosine | constant learning-rate schedule"),
    Flag("--device", "device", str, "auto | cpu | cuda | cuda:N"),
    Flag("--threads", "threads", int, "CPU threads for torch (default: torch's choice; 1 on a busy shared machine)"),
    Flag("--name", "name", str, "run name: outputs go to OUTPUT_DIR/NAME"),
    Flag("--output-dir", "output_dir", str, "folder that holds run folders"),
    Flag("--wandb", "logging.wandb", bool, "also log to Weights & Biases (offline unless WANDB_MODE says otherwise)"),
    Flag("--progress", "logging.progress", bool, "show progress bars"),
]
FLAG_FOR_KEY = {f.key: f.flag for f in FLAGS}
SWEEP_SECTION = "sweep"


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one `--set dotted.key=value`; the value is read as YAML so numbers, bools and lists work."""
    if "=" not in item:
        raise UsageError(f"--set '{item}': expected dotted.key=value, e.g. --set train.epochs=30")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise UsageError(f"--set '{item}': the key before '=' is empty")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise UsageError(f"--set '{item}': the value is not valid YAML ({exc})") from exc
    return key, value


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"config key '{key}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--config: file '{path}' does not exist. Presets live in configs/ (e.g. configs/digits-swast-cut.yaml)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"--config '{path}': not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"--config '{path}': the top level must be a mapping of config keys")
    return data


def build_config(
    file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """Merge the layers (file < flags < --set), validate, and fill what the method decides."""
    tree: dict[str, Any] = read_yaml(file) if file is not None else {}
    # The grid of `swast sweep` may share the file; it is not a run setting (swast/sweep.py validates it).
    tree.pop(SWEEP_SECTION, None)
    for key, value in (flags or {}).items():
        if value is not None:
            set_dotted(tree, key, value)
    for item in sets or []:
        set_dotted(tree, *parse_set(item))
    return validate(tree).resolved()


def validate(tree: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise UsageError(format_validation_error(exc)) from None


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in path:
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc)
        if error["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            known = sorted(parent.model_fields) if parent is not None else []
            hint = closest(loc[-1], known)
            line = f"unknown config key '{key}'"
            line += f"; did you mean '{'.'.join(loc[:-1] + (hint,))}'?" if hint else f"; valid keys here: {', '.join(known)}"
        elif not loc:
            line = str(error["msg"]).removeprefix("Value error, ")
        else:
            flag = FLAG_FOR_KEY.get(key)
            name = f"{key} ({flag})" if flag else key
            line = f"{name}: {error['msg'].removeprefix('Value error, ')}, got {error['input']!r}"
        lines.append(line)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)
