"""``python -m symlight``: LightningCLI for symlight tasks and networks, plus a few extra commands.

    symlight fit --config argmax.yaml
    symlight fit --config argmax --ckpt_path last        # resume the latest argmax run
    symlight predict --config argmax --ckpt_path last    # predictions.pt in a new run folder
    symlight tasks                                       # list the installed tasks
    symlight sweep --config sweeps/argmax_targets.yaml   # an Optuna study of fits

(``python -m symlight`` is the same command.) A config name that is not a file in the working
directory is looked up among the configs shipped with symlight (``--config argmax.yaml`` or
``--config argmax``, ``--model.init_args.net models/pairwise.yaml``), so the commands work from
any folder. Mistakes in the command (a bad value, a missing checkpoint) end with one line on
stderr and exit status 2; set ``SYMLIGHT_TRACEBACK=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import logging
import os
import shlex
import shutil
import sys
import threading
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import get_loader, set_loader
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, Checkpoint, ModelSummary
from lightning.pytorch.callbacks import ProgressBar as LightningProgressBar
from lightning.pytorch.cli import ArgsType, LightningCLI

from symlight.app.argv import CommandLine, pre_parse
from symlight.app.parse_errors import OneLineErrorParser, ParserError, error_chain, explain
from symlight.app.plugins import broken_plugins, discover_tasks
from symlight.callbacks import (
    AtomicCheckpointIO,
    EquivarianceCheck,
    FiniteCheck,
    NonFiniteError,
    ProgressBar,
    RunCheckpoint,
)
from symlight.tasks import SetTask
from symlight.training.module import SymmetricModule

__all__ = ["SymlightCLI", "metrics_table", "resolve_config", "run", "shipped_configs"]

LOG_ROOT = "lightning_logs"
EVAL_FOLDER = "eval"
"""validate, test and predict log to ``lightning_logs/<config>/eval/version_N``."""
PROG = "symlight"
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")


class UsageError(SystemExit):
    """A mistake in the command: exit status 2 and no traceback. ``str()`` is the message; the
    top-level :func:`symlight.cli.main` prints it as one line, ``symlight: error: MESSAGE``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _shipped() -> Path:
    return Path(str(files("symlight.configs")))


def shipped_config_path(name: str) -> Path:
    """The path of a shipped config, e.g. ``argmax.yaml``."""
    return _shipped() / name


def shipped_configs() -> list[str]:
    """Names of the task configs shipped with symlight, e.g. ``argmax.yaml``."""
    return sorted(p.name for p in _shipped().glob("*.yaml"))


def resolve_config(name: str) -> str:
    """A config path as given if it exists, else the shipped config of that name.

    ``NAME`` without a suffix stands for ``NAME.yaml``.
    """
    candidates = [name] if Path(name).suffix else [name, f"{name}.yaml"]
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    for candidate in candidates:
        if (_shipped() / candidate).is_file():
            return str(_shipped() / candidate)
    available = sorted(str(p.relative_to(_shipped())) for p in _shipped().rglob("*.yaml"))
    raise UsageError(
        f"config {name!r} is neither a file nor a shipped config; shipped: {', '.join(available)}"
    )


def shipped_value(value: str) -> str:
    """A config-file value (``models/pairwise.yaml``, or ``--key=models/pairwise.yaml``) that is
    not a file here but a shipped config, as the shipped path; any other value as it is.
    """
    key, sep, path = value.rpartition("=")
    if not path.endswith((".yaml", ".yml")) or Path(path).exists():
        return value
    shipped = _shipped() / path
    return f"{key}{sep}{shipped}" if shipped.is_file() else value


PARSER_MODE = "symlight_yaml"
"""jsonargparse's YAML, with shipped preset paths resolved inside config files (see
:func:`use_shipped_presets`)."""

_config_folders: tuple[Path, ...] = ()


def _with_presets(value: Any, folders: tuple[Path, ...]) -> Any:
    """``value`` (loaded YAML) with each relative ``*.yaml`` value that is not a file in
    ``folders`` or the working directory, but a shipped config, replaced by the shipped path.
    """
    if isinstance(value, dict):
        return {key: _with_presets(item, folders) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_presets(item, folders) for item in value]
    if not isinstance(value, str) or not value.endswith((".yaml", ".yml")):
        return value
    path = Path(value)
    if path.is_absolute() or path.exists() or any((f / path).exists() for f in folders):
        return value
    shipped = _shipped() / path
    return str(shipped) if shipped.is_file() else value


def _load_yaml(value: str, path: Any = "") -> Any:
    loaded = get_loader("yaml")(value)
    folders = (Path(str(path)).parent,) if path else ()
    return _with_presets(loaded, folders + _config_folders)


def use_shipped_presets(configs: tuple[str, ...] = ()) -> None:
    """Make a shipped preset path (``net: models/pairwise.yaml``) inside a config file resolve as
    it does on the command line: through a jsonargparse loader (:data:`PARSER_MODE`) that reads
    YAML and, where a relative ``*.yaml`` value is neither a file beside the config (of
    ``configs``) nor in the working directory, takes the shipped config of that name.
    """
    global _config_folders
    _config_folders = tuple(dict.fromkeys(Path(c).parent for c in configs))
    set_loader(PARSER_MODE, _load_yaml, exceptions=(yaml.YAMLError,))


def last_checkpoint(config: str | None) -> str:
    """The newest ``last.ckpt`` of the runs of ``config`` (what ``--ckpt_path last`` stands for).

    Resolved before parsing, so that LightningCLI rebuilds the network saved in that checkpoint.
    """
    if config is None:
        raise UsageError("--ckpt_path last needs --config (runs are filed by config name)")
    name = Path(config).stem
    run = _latest_run(Path(LOG_ROOT) / name)
    if run is None:
        raise UsageError(
            f"--ckpt_path last: no checkpoint under {LOG_ROOT}/{name}/version_*/checkpoints "
            f"(in {Path.cwd()}); train one first: {PROG} fit --config {Path(config).name}"
        )
    path = str(run / "checkpoints" / "last.ckpt")
    print(f"{PROG}: --ckpt_path last: {path}{_describe_run(run)}", file=sys.stderr)
    return path


def _describe_run(run: Path) -> str:
    """`` (network PairwiseNet, saved ...)`` from a run's config.yaml, or ``""``."""
    try:
        config = yaml.safe_load((run / "config.yaml").read_text())
        net = config["model"]["init_args"]["net"]["class_path"].rsplit(".", 1)[-1]
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return ""
    return f" (network {net}, newest of {len(list(run.parent.glob('version_*')))} runs)"


def check_checkpoint(path: str | None) -> None:
    """Fail early, in one line, on a ``--ckpt_path``: missing, not a checkpoint, or damaged."""
    if path in (None, "", "null", "None", "best", "hpc") or "://" in path or ":" in Path(path).name:
        return
    if not Path(path).is_file():
        raise UsageError(
            f"--ckpt_path {path}: no such file; give a checkpoint such as "
            f"{LOG_ROOT}/<config>/version_N/checkpoints/last.ckpt, or --ckpt_path last"
        )
    if not zipfile.is_zipfile(path):
        raise UsageError(
            f"--ckpt_path {path} is not a PyTorch checkpoint (a text file, or one cut short while "
            "being saved or copied): give a .ckpt file that Lightning wrote"
        )
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()  # every record against its CRC-32: torch.load checks none
    if damaged is not None:
        raise UsageError(
            f"--ckpt_path {path} is damaged: its record {damaged} does not match its checksum "
            "(the file was changed after it was saved): give an intact copy"
        )


# -- what a checkpoint says about its run ---------------------------------------------------------

RECORD_KEY = "symlight"
"""The checkpoint key of :class:`RunLifecycle`'s record: the task's class path and the trainer's
``max_epochs`` and ``max_steps``, so that a resumed run keeps its length and a checkpoint is only
used with its own task."""

LENGTH_OPTIONS = ("max_epochs", "max_steps")


@dataclass(frozen=True)
class SavedRun:
    """What a checkpoint holds about the run that wrote it (fields are None when unknown)."""

    task: str | None = None  # the DataModule's class path (or class name)
    network: str | None = None  # the network's class path
    network_args: Mapping[str, Any] = field(default_factory=dict)
    length: Mapping[str, Any] = field(default_factory=dict)  # max_epochs, max_steps
    global_step: int | None = None

    @staticmethod
    def name(path: str | None) -> str:
        return str(path).rpartition(".")[2]


def _run_config(ckpt: Path) -> dict:
    """The ``config.yaml`` of the run folder that holds ``ckpt``, or ``{}``."""
    if ckpt.parent.name != "checkpoints":
        return {}
    try:
        config = yaml.safe_load((ckpt.parent.parent / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


@lru_cache(maxsize=8)
def _read_saved_run(path: str, stamp: tuple[int, int]) -> SavedRun:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - Lightning reports unreadable checkpoints itself
        return SavedRun()
    if not isinstance(ckpt, dict):
        return SavedRun()
    record = ckpt.get(RECORD_KEY) if isinstance(ckpt.get(RECORD_KEY), dict) else {}
    config = _run_config(Path(path))
    task = record.get("task")
    if task is None:
        data = ckpt.get("datamodule_hyper_parameters") or {}
        task = data.get("_class_path") if isinstance(data, dict) else None
    if task is None:
        task = (config.get("data") or {}).get("class_path") if isinstance(config, dict) else None
    if task is None:  # a task's state is saved under its class name
        task = next((key for key in ckpt if key in discover_tasks()), None)
    net = (ckpt.get("hyper_parameters") or {}).get("net")
    network = net.get("class_path") if isinstance(net, dict) else None
    network_args = (net.get("init_args") or {}) if isinstance(net, dict) else {}
    length = record.get("trainer")
    if not isinstance(length, dict):
        trainer = config.get("trainer") or {}
        length = {k: trainer[k] for k in LENGTH_OPTIONS if k in trainer}
    step = ckpt.get("global_step")
    return SavedRun(task, network, network_args, length, step if isinstance(step, int) else None)


def saved_run(path: str | Path) -> SavedRun:
    """What the checkpoint at ``path`` says about its run: its task, network, length and step,
    from symlight's record in the checkpoint, the hyper-parameters Lightning saved in it, or the
    ``config.yaml`` of its run folder.
    """
    stat = Path(path).stat()
    return _read_saved_run(str(path), (stat.st_mtime_ns, stat.st_size))


def _is_local_file(path: str | None) -> bool:
    return bool(path) and "://" not in str(path) and Path(str(path)).is_file()


def resume_length(line: CommandLine) -> CommandLine:
    """``fit`` from a checkpoint keeps the length of the run that wrote it (``max_epochs``,
    ``max_steps``) unless the command line gives one; a one-cycle schedule cannot run longer.
    """
    if line.command != "fit" or not _is_local_file(line.ckpt_path):
        return line
    given = {option.removeprefix("--trainer.") for option in line.options}
    if given & set(LENGTH_OPTIONS) or "--trainer" in line.options:
        return line
    length = saved_run(line.ckpt_path).length
    if not length:
        return line
    args = tuple(
        f"--trainer.{key}={'null' if length[key] is None else length[key]}"
        for key in LENGTH_OPTIONS
        if key in length
    )
    shown = " ".join(a.replace("=", " ", 1) for a in args if not a.endswith(("=-1", "=null")))
    print(f"{PROG}: resuming with the run's own length: {shown}", file=sys.stderr)
    return line.replace(rest=(*line.rest, *args))


def check_same_task(line: CommandLine, config) -> None:
    """A checkpoint runs only with the task it was trained on, and with its own network: a
    checkpoint of another task, or a network given on the command line that is not the
    checkpoint's, is a :class:`UsageError` naming both.
    """
    path = config.get("ckpt_path")
    if not _is_local_file(path):
        return
    saved = saved_run(path)
    data = config.get("data")
    task = data.get("class_path") if data is not None else None
    hint = f"{Path(path).parent.parent / 'config.yaml'}" if _run_config(Path(path)) else ""
    if saved.task and task and SavedRun.name(saved.task) != SavedRun.name(task):
        network = f" (network {SavedRun.name(saved.network)})" if saved.network else ""
        raise UsageError(
            f"--ckpt_path {path} is a checkpoint of the task {SavedRun.name(saved.task)}{network}"
            f", but this command's task is {SavedRun.name(task)}: use the config it was trained "
            f"with{f' ({hint})' if hint else ''}, or a checkpoint of {SavedRun.name(task)}"
        )
    asked = [o for o in line.options if o.startswith("--model.init_args.net")]
    net = _get(config, "model.init_args.net")
    if not asked or saved.network is None or net is None:
        return
    wanted = net.get("class_path") if hasattr(net, "get") else None
    if wanted and SavedRun.name(wanted) != SavedRun.name(saved.network):
        raise UsageError(
            f"--ckpt_path {path} holds a {SavedRun.name(saved.network)} network, but the command "
            f"asks for {SavedRun.name(wanted)} ({asked[0]}): a checkpoint runs with the network "
            "it was trained with; leave out --model.init_args.net"
        )
    prefix = "--model.init_args.net.init_args."
    for option in asked:
        key = option.removeprefix(prefix)
        if option == key or "." in key or key not in saved.network_args:
            continue
        value = _get(config, f"model.init_args.net.init_args.{key}")
        if _plain(value) != _plain(saved.network_args[key]):
            raise UsageError(
                f"--ckpt_path {path} holds a {SavedRun.name(saved.network)} network with "
                f"{key}={saved.network_args[key]}, but the command asks for {key}={value}: a "
                f"checkpoint runs with the network it was trained with; leave out {option}"
            )


def _get(config, key: str):
    try:
        return config.get(key)
    except (AttributeError, KeyError, TypeError):
        return None


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def run_name(config) -> str:
    """Log folder name of a run: its first config file's stem, else the task's class name."""
    if config.get("config"):
        return Path(str(config.config[0])).stem
    return config.data.class_path.rsplit(".", 1)[-1].removesuffix("DataModule").lower()


def _latest_run(task_dir: Path) -> Path | None:
    runs = [p.parent.parent for p in task_dir.glob("version_*/checkpoints/last.ckpt")]
    return max(runs, key=lambda p: int(p.name.split("_")[1]), default=None)


MID_EPOCH_WARNING = r"You're resuming from a checkpoint that ended before the epoch ended"
"""Lightning's warning on a mid-epoch resume with a loader that has no ``state_dict``."""


class SymlightCLI(LightningCLI):
    """LightningCLI with symlight's defaults: TensorBoard per config, last and best checkpoints,
    the data's dimensions linked into the model, and ``fit`` from a run's own checkpoint (or
    ``--ckpt_path last``) resuming in that run's log folder; other subcommands log to a new one.
    At the end of ``fit``, ``validate`` and ``test`` it prints the run folder and the final
    metrics; ``predict`` writes ``predictions.pt`` into the run folder. A run that fails before
    its first training step leaves no run folder behind.
    """

    resumed = False
    """Whether ``fit`` continues a run in its own folder (never removed on failure)."""

    def __init__(self, *args: Any, command_line: CommandLine | None = None, **kwargs: Any) -> None:
        self.command_line = command_line
        """The command as it was typed (before config names and ``--ckpt_path last`` were
        resolved): what an interrupted run prints to resume it."""
        self.run_folder: Path | None = None
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand in TRAINER_COMMANDS:
            check_same_task(self.command_line or CommandLine(subcommand), self.config[subcommand])

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.add_lightning_class_args(EquivarianceCheck, "equivariance")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.link_arguments(
            "data.element_shape", "model.init_args.element_shape", apply_on="instantiate"
        )
        # the task's output representation (a Rep), printed: "1x1 @ D_20"
        parser.link_arguments(
            "data.rep_out", "model.init_args.rep_out", compute_fn=str, apply_on="instantiate"
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        task = run_name(config)
        version = None
        if self.subcommand == "fit" and config.get("ckpt_path"):
            version = _version_of(Path(str(config.ckpt_path)), Path(LOG_ROOT) / task)
        if version is not None:
            # Resuming writes into the run's own, non-empty checkpoint folder on purpose.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
            self.run_folder = Path(LOG_ROOT) / task / f"version_{version}"
        self.resumed = version is not None
        if config.trainer.logger in (None, True):
            config.trainer.logger = {
                "class_path": "symlight.training.RunLogger",
                "init_args": {
                    "save_dir": LOG_ROOT,
                    # evaluations log apart from the training runs they evaluate
                    "name": task if self.subcommand == "fit" else f"{task}/{EVAL_FOLDER}",
                    "version": version,
                    "default_hp_metric": False,
                },
            }

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Lightning's trainer with symlight's defaults: its own progress bar and the plain model
        summary (rich installed or not), the prediction writer for ``predict``, the removal of a
        new run's folder when it fails before its first step, the stop of ``fit`` at the first
        NaN or infinite training value (:class:`~symlight.callbacks.FiniteCheck`), checkpoints
        written atomically (:class:`~symlight.callbacks.AtomicCheckpointIO`, unless the config
        names plugins), and no checkpoint callback at all when checkpointing is off.
        """
        config = self.config_init[self.subcommand]["trainer"]
        given = config.get("callbacks") or []
        callbacks = list(given) if isinstance(given, list) else [given]
        bare = bool(config.get("barebones"))
        if config.get("enable_progress_bar") is not False and not bare:
            if not any(isinstance(c, LightningProgressBar) for c in callbacks):
                callbacks.append(ProgressBar())
        if config.get("enable_model_summary") is not False and not bare:
            if not any(isinstance(c, ModelSummary) for c in callbacks):
                callbacks.append(ModelSummary())
        if self.subcommand == "predict":
            callbacks.append(PredictionWriter())
        if self.subcommand == "fit":
            callbacks.append(RunLifecycle(self.command_line, self.run_folder))
            if not any(isinstance(c, FiniteCheck) for c in callbacks):
                callbacks.append(FiniteCheck())
        else:
            callbacks.append(RunLifecycle())
        if not config.get("plugins"):
            kwargs.setdefault("plugins", [AtomicCheckpointIO()])
        checkpointing_off = config.get("enable_checkpointing") is False
        if checkpointing_off:
            # Lightning refuses a ModelCheckpoint (ours is always configured) when checkpointing
            # is off: build the trainer with it, then take every checkpoint callback out.
            kwargs.setdefault("enable_checkpointing", True)
        trainer = super().instantiate_trainer(**{"callbacks": callbacks, **kwargs})
        if checkpointing_off:
            trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, Checkpoint)]
        return trainer

    def before_fit(self) -> None:
        if getattr(self.datamodule, "train_batches", None) is not None:
            # FreshBatches resume mid-epoch from the task's checkpoint state, which Lightning's
            # warning about loaders that cannot resume does not see
            warnings.filterwarnings("ignore", message=MID_EPOCH_WARNING)

    def before_validate(self) -> None:
        self._quiet()

    def before_test(self) -> None:
        self._quiet()

    def _quiet(self) -> None:
        """The table printed at the end (``after_validate``, ``after_test``) replaces Lightning's."""
        self.config_init[self.subcommand]["verbose"] = False

    def after_fit(self) -> None:
        self._report("val")

    def after_validate(self) -> None:
        self._report("val")

    def after_test(self) -> None:
        self._report("test")

    def _report(self, stage: str) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith((f"{stage}/", "equivariance/")) and value.numel() == 1
        }
        print(f"run folder: {_run_folder(trainer)}")
        if metrics:
            print(metrics_table(metrics))
        elif stage == "val" and self.resumed:
            print(
                f"nothing to train: the run had already reached max_epochs={trainer.max_epochs} "
                f"(step {trainer.global_step}); its figures are in the run folder"
            )


def _run_folder(trainer: Trainer) -> str:
    logger = trainer.logger
    folder = getattr(logger, "log_dir", None) or trainer.default_root_dir
    return os.path.relpath(folder) if not os.path.relpath(folder).startswith("..") else folder


def metrics_table(metrics: Mapping[str, float]) -> str:
    """Metrics as a table: one row per name, one column per evaluation set (``@n=100``, ...).

    >>> print(metrics_table({"val/acc": 1.0, "val/acc@n=100": 0.5, "val/loss": 0.25}))
    metric    main  @n=100
    val/acc   1     0.5
    val/loss  0.25
    """
    rows: dict[str, dict[str, float]] = {}
    columns: list[str] = [""]
    for key, value in metrics.items():
        name, at, suffix = key.partition("@")
        suffix = at + suffix
        rows.setdefault(name, {})[suffix] = value
        if suffix not in columns:
            columns.append(suffix)
    header = ["metric", *(c or "main" for c in columns)]
    lines = [header] + [
        [name, *(f"{values[c]:.4g}" if c in values else "" for c in columns)]
        for name, values in rows.items()
    ]
    widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines
    )


class PredictionWriter(BasePredictionWriter):
    """Writes the outputs of ``predict`` to ``predictions.pt`` in the run folder and says where.

    The file holds four lists with one entry per batch, in the order of the predict data:
    ``predictions`` (the network's outputs, ``(B, ...)``), ``set_index`` (``(B,)``, each set's
    position in the predict data), and the inputs ``x`` and ``mask`` of those sets (None where a
    batch has no such tensor). Under DDP each process writes ``predictions_rank{N}.pt`` with the
    sets it predicted.
    """

    KEYS = ("predictions", "set_index", "x", "mask")

    def __init__(self) -> None:
        super().__init__(write_interval="batch")
        self.written: dict[str, list] = {key: [] for key in self.KEYS}
        self.starts: dict[int, list[int]] = {}
        self.seen = 0

    def on_predict_start(self, trainer: Trainer, pl_module) -> None:
        self.written = {key: [] for key in self.KEYS}
        self.starts, self.seen = {}, 0

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        size = len(prediction)
        index = self.set_index(trainer, batch_indices, batch_idx, dataloader_idx, size)
        self.seen += size
        self.written["predictions"].append(_to_cpu(prediction))
        self.written["set_index"].append(index)
        for key in ("x", "mask"):
            value = batch.get(key) if isinstance(batch, Mapping) else None
            fits = isinstance(value, torch.Tensor) and value.dim() > 0 and len(value) == size
            self.written[key].append(value.detach().cpu() if fits else None)

    def set_index(self, trainer, batch_indices, batch_idx, dataloader_idx, size) -> torch.Tensor:
        """The positions in the predict data of the ``size`` sets of a batch: from the sampler's
        indices of a batched loader, from the position of a ready-made batch among the loader's
        batches, or counted.
        """
        if batch_indices is not None and len(batch_indices) == size:
            return torch.as_tensor(list(batch_indices), dtype=torch.long)
        starts = self.starts.get(dataloader_idx)
        if starts is None:
            starts = self.starts[dataloader_idx] = _batch_starts(trainer, dataloader_idx)
        if starts and batch_idx < len(starts):
            return torch.arange(starts[batch_idx], starts[batch_idx] + size)
        return torch.arange(self.seen, self.seen + size)

    def on_predict_epoch_end(self, trainer: Trainer, pl_module) -> None:
        folder = Path(_run_folder(trainer))
        folder.mkdir(parents=True, exist_ok=True)
        name = (
            "predictions.pt"
            if trainer.world_size == 1
            else f"predictions_rank{trainer.global_rank}.pt"
        )
        path = folder / name
        torch.save(self.written, path)
        count = sum(len(p) for p in self.written["predictions"])
        print(f"predictions of {count} sets written to {path}")


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {key: _to_cpu(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _batch_starts(trainer: Trainer, dataloader_idx: int) -> list[int]:
    """For a loader over ready-made batches (``batch_size=None``), the position in the predict
    data of each batch's first set, in the order the loader yields them; ``[]`` otherwise.
    """
    loaders = trainer.predict_dataloaders
    loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
    if dataloader_idx >= len(loaders):
        return []
    loader = loaders[dataloader_idx]
    dataset, sampler = getattr(loader, "dataset", None), getattr(loader, "sampler", None)
    if getattr(loader, "batch_size", 0) is not None or sampler is None:
        return []
    try:
        sizes = [len(dataset[i]["x"]) for i in range(len(dataset))]
        order = list(iter(sampler))
    except (TypeError, KeyError, IndexError):
        return []
    firsts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [firsts[i] for i in order]


class RunLifecycle(Callback):
    """What a run that ends early leaves behind, and what it says.

    - A new run that fails before its first training step leaves no run folder (it holds only
      ``config.yaml`` and an empty event file); a folder that holds a checkpoint is always kept.
    - A resumed run that fails before training a step leaves its folder as it found it.
    - ``fit`` stopped with Ctrl-C ends with the run folder and the command that resumes it.
    - Every checkpoint records the task and the run's length (``max_epochs``, ``max_steps``), so
      that a run resumes with its own length and a checkpoint is used with its own task only.

    Args:
        command: the command as typed, for the resume command (None: no resume hint).
        resumed: the folder of the run that this ``fit`` continues, if any.

    """

    def __init__(self, command: CommandLine | None = None, resumed: Path | None = None) -> None:
        self.command = command
        self.resumed = resumed
        self.before = _snapshot(resumed) if resumed is not None else None
        self.start_step: int | None = None

    def on_train_start(self, trainer: Trainer, pl_module) -> None:
        self.start_step = trainer.global_step

    def on_save_checkpoint(self, trainer: Trainer, pl_module, checkpoint: dict) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        task = type(datamodule) if datamodule is not None else None
        checkpoint[RECORD_KEY] = {
            "task": f"{task.__module__}.{task.__qualname__}" if task else None,
            "trainer": {key: getattr(trainer, key) for key in LENGTH_OPTIONS},
        }

    def on_exception(self, trainer: Trainer, pl_module, exception: BaseException) -> None:
        if not trainer.is_global_zero:
            return
        trained = self.start_step is not None and trainer.global_step > self.start_step
        folder = getattr(trainer.logger, "log_dir", None)
        if self.resumed is not None:
            if not trained and self.before is not None:
                _restore(self.resumed, self.before)
        elif not trained and folder and Path(folder).is_dir():
            if not any(Path(folder).rglob("*.ckpt")):
                shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exception, KeyboardInterrupt) and self.command is not None:
            print(self.interrupted(trainer, folder), file=sys.stderr, flush=True)
        if isinstance(exception, KeyboardInterrupt):
            exit_if_stuck(SHUTDOWN_S)

    def interrupted(self, trainer: Trainer, folder: str | None) -> str:
        """Where an interrupted ``fit`` stands and the command that resumes it."""
        last = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
        if not last and folder:
            last = str(Path(folder) / "checkpoints" / "last.ckpt")
        where = f"interrupted at step {trainer.global_step}"
        if not last or not Path(last).is_file():
            kept = f"; run folder {_relative(folder)}" if folder and Path(folder).is_dir() else ""
            return (
                f"{PROG}: {where}, before its first checkpoint{kept}: nothing to resume; "
                f"start again with\n{command_text(self.command)}"
            )
        last = _relative(last)
        step = saved_run(last).global_step
        return (
            f"{PROG}: {where}; run folder {_relative(folder or Path(last).parent.parent)}; "
            f"its last checkpoint{f' (step {step})' if step is not None else ''} is {last}. "
            f"Resume it with\n{command_text(self.command.replace(ckpt_path=last))}"
        )


def command_text(line: CommandLine) -> str:
    """``line`` as a shell command, under the name the program was started with."""
    prog = PROG if Path(sys.argv[0]).name == PROG else f"python -m {PROG}"
    return f"{prog} {shlex.join(line.args())}"


def _relative(path) -> str:
    text = os.path.relpath(path)
    return str(path) if text.startswith("..") else text


SNAPSHOT_LIMIT = 1 << 20
"""Files of a resumed run folder up to this size are kept in memory, to be put back as they were
if the resumed run fails before its first step (checkpoints are never rewritten then)."""


def _snapshot(folder: Path) -> dict[Path, bytes | None]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return {p: p.read_bytes() if p.stat().st_size <= SNAPSHOT_LIMIT else None for p in files}


SHUTDOWN_S = 30.0
"""Seconds a process interrupted by Ctrl-C may take to shut down before it is ended."""


def exit_if_stuck(seconds: float) -> None:
    """End the process (status 1) if it is still shutting down after ``seconds``.

    After Ctrl-C, Lightning ignores further Ctrl-C while it shuts down; a shutdown that blocks
    (a lock left held by the interrupted step, a writer thread) would leave the process unkillable
    from the keyboard. Everything worth keeping (the checkpoint, the resume command) is written
    before this timer starts.
    """

    def end() -> None:
        print(f"{PROG}: shutdown after Ctrl-C took over {seconds:.0f} s; ended", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()


def _restore(folder: Path, before: Mapping[Path, bytes | None]) -> None:
    """Put ``folder`` back as :func:`_snapshot` found it: new files removed, changed ones
    rewritten.
    """
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path not in before:
            path.unlink(missing_ok=True)
        elif path.is_dir() and not any(path.iterdir()) and path != folder:
            if not any(p.is_relative_to(path) for p in before):
                path.rmdir()
    for path, content in before.items():
        if content is not None and (not path.is_file() or path.read_bytes() != content):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def _version_of(ckpt: Path, task_dir: Path) -> int | None:
    """N when ``ckpt`` is one of ``task_dir/version_N/checkpoints``: fit then resumes in place."""
    run = ckpt.parent.parent
    if ckpt.parent.name != "checkpoints" or not run.name.removeprefix("version_").isdigit():
        return None
    if run.parent.resolve() != task_dir.resolve():
        return None
    return int(run.name.split("_")[1])


# -- entry point ----------------------------------------------------------------------------------

USER_ERRORS = (ValueError, FileNotFoundError, MisconfigurationException, NonFiniteError)
"""Exceptions that mean a mistake in the command, its config or its data, not a bug (a NaN loss
is a learning rate too large or bad data)."""


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
"""OSError numbers of a full disk or an exceeded quota: the machine's state, said in one line."""


def _user_message(error: BaseException) -> str | None:
    """One line for a user error: the innermost error of the chain (jsonargparse wraps the one
    a task or model raised in its own), or None when ``error`` is not a user error.
    """
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return f"{error}; every checkpoint written before is intact (they are replaced atomically)"
    if not isinstance(error, USER_ERRORS):
        return None
    for candidate in reversed(error_chain(error)):
        text = str(candidate).strip()
        if isinstance(candidate, USER_ERRORS) and text and "Does not validate against" not in text:
            return text.splitlines()[0]
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


NOISE = (
    # test/predict from a checkpoint log to a new run folder, by design.
    r"The dirpath has changed from",
    # Fresh-batch datasets are iterable with a length (for progress bars) and loaded in-process.
    r"Your `IterableDataset` has `__len__` defined",
    # predict's loaders hold ready-made batches; the prediction file does not need their indices.
    r"Couldn't infer the batch indices",
    # Raised inside Lightning's pytree helper by newer torch; it does not affect training.
    r".*isinstance\(treespec, LeafSpec\)",
)
"""Warnings that say nothing to a symlight user, ignored while a command runs."""


class _Chatter(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger, "Seed set to 0" (the config says so,
    on every run and rank) and the note that symlight's model summary replaces the default one.
    """

    DROPPED = ("💡 Tip", "Seed set to", "Trainer already configured with model summary callbacks")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.DROPPED)


CHATTY_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
)


@contextlib.contextmanager
def quiet_run():
    """While a command runs: :data:`NOISE` ignored and Lightning's chatter filtered; both are
    undone when it ends, however it ends.
    """
    chatter = _Chatter()
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    with warnings.catch_warnings():
        for message in NOISE:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.addFilter(chatter)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(chatter)


def resolve(line: CommandLine) -> CommandLine:
    """``line`` with shipped config names resolved to their files and ``--ckpt_path last`` to the
    newest checkpoint; a missing or damaged checkpoint is an error.
    """
    configs = tuple(resolve_config(config) for config in line.configs)
    ckpt_path = line.ckpt_path
    if ckpt_path == "last":
        ckpt_path = last_checkpoint(line.configs[0] if line.configs else None)
    check_checkpoint(ckpt_path)
    rest = tuple(shipped_value(token) for token in line.rest)
    return resume_length(line.replace(configs=configs, ckpt_path=ckpt_path, rest=rest))


def relaunch_with(args: list[str]) -> None:
    """Make ``args`` the process's own command line.

    With ``strategy=ddp``, Lightning starts each extra rank with ``sys.argv``: the ranks then
    read the resolved config paths and checkpoint, instead of resolving ``--ckpt_path last``
    (and saying so) again.
    """
    sys.argv[1:] = args


def _guide(line: CommandLine) -> None:
    """Fail with a hint for ``symlight fit`` (etc.) given neither a config nor a model and data;
    warn when an evaluation has no checkpoint.
    """
    if line.command not in TRAINER_COMMANDS or line.shows:
        return
    if not line.configs and not any(o.startswith(("--model", "--data")) for o in line.options):
        typo = difflib.get_close_matches("--config", line.options, n=1, cutoff=0.7)
        raise UsageError(
            f"{line.command} needs a config"
            + (f" ({typo[0]} is not an option: did you mean --config?)" if typo else "")
            + f": try `{PROG} {line.command} --config argmax.yaml`; "
            f"shipped configs: {', '.join(shipped_configs())}"
        )
    if line.command != "fit" and line.ckpt_path is None:
        print(
            f"{PROG}: warning: {line.command} without --ckpt_path uses the untrained weights of a "
            "new network; pass --ckpt_path last (the latest run of this config) or a checkpoint file",
            file=sys.stderr,
        )


CLASS_GROUPS = {"trainer": Trainer, "checkpoint": RunCheckpoint, "equivariance": EquivarianceCheck}
"""The class behind each group of options that is not a subclass choice (for error messages)."""


def cli_options(epilog: str = "") -> dict[str, Any]:
    """The arguments every :class:`SymlightCLI` is built with: the generic module, any task,
    one-line parser errors, no abbreviated options, shipped presets inside config files.
    """
    commands = {
        name: {"prog": f"{PROG} {name}", "allow_abbrev": False, "parser_mode": PARSER_MODE}
        for name in TRAINER_COMMANDS
    }
    return {
        "model_class": SymmetricModule,
        "datamodule_class": SetTask,
        "subclass_mode_model": True,
        "subclass_mode_data": True,
        "parser_class": OneLineErrorParser,
        "seed_everything_default": 0,
        "parser_kwargs": {
            "prog": PROG,
            "description": "Train and evaluate permutation-symmetric networks on set "
            "tasks (LightningCLI).",
            "epilog": epilog or None,
            "allow_abbrev": False,
            "parser_mode": PARSER_MODE,
            **commands,
        },
        "auto_configure_optimizers": False,
    }


class _ParserBuilt(Exception):
    """Stops a :class:`SymlightCLI` once its parser is built: nothing is parsed or instantiated."""

    def __init__(self, parser: OneLineErrorParser) -> None:
        super().__init__()
        self.parser = parser


class _ParseOnlyCLI(SymlightCLI):
    """The CLI up to its parser, built with the same options as :func:`run`."""

    def parse_arguments(self, parser, args) -> None:
        raise _ParserBuilt(parser)


def command_parser() -> OneLineErrorParser:
    """The parser of the ``fit``/``validate``/``test``/``predict`` command line, with the
    installed task plug-ins and the shipped presets, built exactly as :func:`run` builds it.
    """
    discover_tasks()
    use_shipped_presets()
    try:
        with quiet_run():
            _ParseOnlyCLI(**cli_options(), args=[])
    except _ParserBuilt as built:
        return built.parser
    raise RuntimeError("LightningCLI parsed without calling parse_arguments")


def run(args: ArgsType = None, epilog: str = "") -> SymlightCLI:
    """Run a Lightning command (fit, validate, test, predict); ``args`` defaults to
    ``sys.argv[1:]``. ``epilog`` ends ``--help``. A mistake in the command raises
    :class:`UsageError`.
    """
    try:
        line = pre_parse(sys.argv[1:] if args is None else args)
    except argparse.ArgumentError as error:
        raise UsageError(str(error)) from None
    discover_tasks()
    for name, error in sorted(broken_plugins().items()):
        print(f"{PROG}: warning: task plug-in {name} is broken: {error}", file=sys.stderr)
    _guide(line)
    typed, line = line, resolve(line)
    if args is None:
        relaunch_with(line.args())
    use_shipped_presets(line.configs)
    try:
        with quiet_run():
            return SymlightCLI(
                **cli_options(epilog),
                save_config_kwargs={"overwrite": True},
                args=None if args is None else line.args(),
                command_line=typed,
            )
    except ParserError as error:
        message = explain(error.parser, line.configs, line.rest, CLASS_GROUPS, error.error)
        raise UsageError(message) from None
    except (*USER_ERRORS, OSError) as error:
        message = _user_message(error)
        if message is None or os.environ.get("SYMLIGHT_TRACEBACK"):
            raise
        raise UsageError(message) from None
    finally:
        # A DDP process that exits with its gloo group alive can abort in the group's threads
        # ("terminate called without an active exception"); close the group first.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
