"""``python -m symlight``: LightningCLI for symlight tasks and networks, plus a few extra commands.

    python -m symlight fit --config argmax.yaml
    python -m symlight fit --config argmax.yaml --ckpt_path last      # resume the latest run
    python -m symlight tasks                                          # list the installed tasks

A config name that is not a file in the working directory is looked up among the configs shipped
with symlight (``--config argmax.yaml``, ``--model.init_args.net models/pairwise.yaml``), so the
commands work from any folder.
"""

from __future__ import annotations

import sys
import warnings
from importlib.resources import files
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningCLI

from symlight.callbacks import EquivarianceCheck
from symlight.module import SymmetricModule
from symlight.plugins import discover_tasks
from symlight.tasks import SetTask

__all__ = ["SymlightCLI", "main", "resolve_config"]

LOG_ROOT = "lightning_logs"


def resolve_config(name: str) -> str:
    """A config path as given if it exists, else the shipped config of that name."""
    if Path(name).exists():
        return name
    shipped = Path(str(files("symlight.configs")))
    if (shipped / name).is_file():
        return str(shipped / name)
    available = sorted(str(p.relative_to(shipped)) for p in shipped.rglob("*.yaml"))
    raise SystemExit(
        f"config {name!r} is neither a file nor a shipped config; shipped: {', '.join(available)}"
    )


CONFIG_FLAGS = ("--config", "-c")


def _resolve_config_args(args: list[str]) -> list[str]:
    """Resolve ``--config NAME`` and any ``--key NAME.yaml`` value to a shipped config if needed."""
    out = list(args)
    for i, arg in enumerate(out):
        key, sep, value = arg.partition("=")
        if sep and key.startswith("--") and value.endswith((".yaml", ".yml")):
            out[i] = f"{key}={_resolve_value(key, value)}"
        elif i > 0 and out[i - 1].startswith("-") and arg.endswith((".yaml", ".yml")):
            out[i] = _resolve_value(out[i - 1], arg)
    return out


def _resolve_value(key: str, value: str) -> str:
    if key in CONFIG_FLAGS:
        return resolve_config(value)
    shipped = files("symlight.configs").joinpath(value)
    return value if Path(value).exists() or not shipped.is_file() else str(shipped)


def _first_config(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg in CONFIG_FLAGS and i + 1 < len(args):
            return args[i + 1]
    return None


def _resolve_last_checkpoint(args: list[str]) -> list[str]:
    """Replace ``--ckpt_path last`` by the newest ``last.ckpt`` of the config's runs.

    Done before parsing, so that LightningCLI rebuilds the network saved in that checkpoint.
    """
    out = list(args)
    for i, arg in enumerate(out):
        if arg != "--ckpt_path=last" and not (arg == "last" and i and out[i - 1] == "--ckpt_path"):
            continue
        config = _first_config(out)
        if config is None:
            raise SystemExit("--ckpt_path last needs --config (runs are filed by config name)")
        name = Path(config).stem
        run = _latest_run(Path(LOG_ROOT) / name)
        if run is None:
            raise SystemExit(
                f"--ckpt_path last: no checkpoint under {LOG_ROOT}/{name}/version_*/checkpoints"
            )
        path = str(run / "checkpoints" / "last.ckpt")
        out[i] = f"--ckpt_path={path}" if arg.startswith("--") else path
    return out


def run_name(config) -> str:
    """Log folder name of a run: its first config file's stem, else the task's class name."""
    if config.get("config"):
        return Path(str(config.config[0])).stem
    return config.data.class_path.rsplit(".", 1)[-1].removesuffix("DataModule").lower()


def _latest_run(task_dir: Path) -> Path | None:
    runs = [p.parent.parent for p in task_dir.glob("version_*/checkpoints/last.ckpt")]
    return max(runs, key=lambda p: int(p.name.split("_")[1]), default=None)


class SymlightCLI(LightningCLI):
    """LightningCLI with symlight's defaults: TensorBoard per config, last and best checkpoints,
    the data's dimensions linked into the model, and ``fit`` from a run's own checkpoint (or
    ``--ckpt_path last``) resuming in that run's log folder; other subcommands log to a new one.
    """

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
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
        for source in ("element_shape", "out_channels", "out_order"):
            parser.link_arguments(
                f"data.{source}", f"model.init_args.{source}", apply_on="instantiate"
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
        if config.trainer.logger in (None, True):
            config.trainer.logger = {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": LOG_ROOT, "name": task, "version": version},
            }


def _version_of(ckpt: Path, task_dir: Path) -> int | None:
    """N when ``ckpt`` is one of ``task_dir/version_N/checkpoints``: fit then resumes in place."""
    run = ckpt.parent.parent
    if ckpt.parent.name != "checkpoints" or not run.name.removeprefix("version_").isdigit():
        return None
    if run.parent.resolve() != task_dir.resolve():
        return None
    return int(run.name.split("_")[1])


def _list_tasks() -> None:
    for name, cls in sorted(discover_tasks().items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:28s} {cls.__module__}  {doc[0] if doc else ''}")


def main(args: ArgsType = None) -> SymlightCLI | None:
    """Run the symlight command line; ``args`` defaults to ``sys.argv[1:]``."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] == "tasks":
        _list_tasks()
        return None
    discover_tasks()
    argv = _resolve_last_checkpoint(_resolve_config_args(argv))
    if args is None:
        # Rewrite in place: DDP re-launches each extra rank with this same command line.
        sys.argv[1:] = argv
    # Fresh-batch datasets are iterable with a length (for progress bars) and loaded in-process.
    warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")
    # Raised inside Lightning's pytree helper by newer torch; it does not affect training.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    return SymlightCLI(
        SymmetricModule,
        SetTask,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=None if args is None else argv,
        auto_configure_optimizers=False,
    )
