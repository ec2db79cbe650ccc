"""Sweep configs: a base CLI config, a grid of overrides or a search space, and budgets."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from symlight.app.cli import UsageError

__all__ = [
    "DEFAULT_QUICK",
    "SweepConfig",
    "find_sweep_config",
    "load_sweep",
    "parse_sweep",
    "cli_value",
    "overrides",
]

DEFAULT_QUICK = {
    "trainer.max_epochs": 1,
    "trainer.limit_train_batches": 2,
    "trainer.limit_val_batches": 1,
    "trainer.num_sanity_val_steps": 0,
    "trainer.check_val_every_n_epoch": 1,
    "trainer.log_every_n_steps": 1,
}
PLOT_KINDS = ("curve", "size", "params", "bar")


@dataclass
class SweepConfig:
    """A parsed sweep config (see the module docstring and ``configs/sweeps/*.yaml``)."""

    name: str
    path: Path
    base: str
    args: list[str] = field(default_factory=list)
    grid: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_trials: int = 0
    objective: str = "val/acc"
    direction: str = "maximize"
    metrics: list[str] = field(default_factory=list)
    seed_axis: str = "seed"
    quick: list[str] = field(default_factory=lambda: overrides(DEFAULT_QUICK))
    timeout: float | None = None
    in_process: bool = False
    threads: int | None = None
    plots: list[dict[str, Any]] = field(default_factory=list)
    compare: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def compared(self) -> list[str]:
        """The axes whose options the report compares: ``compare``, else every non-seed axis."""
        return self.compare or [axis for axis in self.grid if axis != self.seed_axis]

    @property
    def total(self) -> int:
        """Trials the sweep needs: every grid point, or ``n_trials``."""
        return math.prod(len(v) for v in self.grid.values()) if self.grid else self.n_trials

    def fingerprint(self, quick: bool) -> str:
        """What makes two runs the same sweep: base, overrides, grid or space, budgets."""
        spec = [self.base, self.args, self.grid, self.space, self.quick if quick else None]
        return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


# -- config ---------------------------------------------------------------------------------------
def cli_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def overrides(spec: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """CLI arguments from ``{key: value}`` (``--key=value``) or a list of arguments as they are.

    >>> overrides({"trainer.max_epochs": 2, "data.init_args.val_sizes": [100]})
    ['--trainer.max_epochs=2', '--data.init_args.val_sizes=[100]']
    """
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [f"--{key}={cli_value(value)}" for key, value in spec.items()]
    return [str(arg) for arg in spec]


def find_sweep_config(name: str) -> Path:
    """A sweep config path as given, else a shipped one: ``argmax``, ``sweeps/argmax.yaml``, ..."""
    if Path(name).is_file():
        return Path(name)
    shipped = Path(str(files("symlight.configs")))
    stem = name.removeprefix("sweeps/")
    for candidate in (f"sweeps/{stem}", f"sweeps/{stem}.yaml"):
        if (shipped / candidate).is_file():
            return shipped / candidate
    found = sorted(p.name for p in (shipped / "sweeps").glob("*.yaml"))
    raise UsageError(f"sweep config {name!r} not found; shipped sweeps: {', '.join(found)}")


def load_sweep(name: str) -> SweepConfig:
    """Read and check a sweep config; a mistake in it is a one-line :class:`UsageError`."""
    path = find_sweep_config(name)
    return parse_sweep(path.read_text(), path)


def parse_sweep(text: str, path: Path, name: str | None = None) -> SweepConfig:
    """Check a sweep config's YAML ``text`` (read from ``path``; named ``name``, by default the
    file's stem); a mistake in it is a one-line :class:`UsageError` naming ``path``.
    """
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, Mapping):
        raise UsageError(f"{path}: a sweep config is a mapping of keys (base, grid, ...)")
    known = set(SweepConfig.__dataclass_fields__) - {"name", "path", "text"}
    unknown = set(raw) - known
    if unknown:
        raise UsageError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    if "base" not in raw:
        raise UsageError(f"{path}: needs 'base', the CLI config every trial starts from")
    if bool(raw.get("grid")) == bool(raw.get("space")):
        raise UsageError(f"{path}: give exactly one of 'grid' (axes of options) or 'space'")
    if raw.get("space") and not raw.get("n_trials"):
        raise UsageError(f"{path}: a 'space' sweep needs 'n_trials'")
    if raw.get("direction", "maximize") not in ("maximize", "minimize"):
        raise UsageError(f"{path}: direction must be maximize or minimize")
    for key in ("args", "quick"):
        if not isinstance(raw.get(key) or {}, (Mapping, list)):
            raise UsageError(f"{path}: {key!r} is a mapping {{key: value}} or a list of arguments")
    for key in ("compare", "baselines"):
        if not isinstance(raw.get(key) or [], list):
            raise UsageError(f"{path}: {key!r} is a list of names")
    grid = _grid(path, raw.get("grid") or {})
    space = _space(path, raw.get("space") or {})
    cfg = SweepConfig(
        name=name or path.stem,
        path=path,
        base=str(raw["base"]),
        args=overrides(raw.get("args")),
        grid=grid,
        space=space,
        n_trials=int(raw.get("n_trials") or 0),
        objective=str(raw.get("objective", "val/acc")),
        direction=str(raw.get("direction", "maximize")),
        metrics=[str(m) for m in raw.get("metrics") or [raw.get("objective", "val/acc")]],
        seed_axis=str(raw.get("seed_axis", "seed")),
        timeout=raw.get("timeout"),
        in_process=bool(raw.get("in_process", False)),
        threads=raw.get("threads"),
        plots=list(raw.get("plots") or []),
        compare=[str(axis) for axis in raw.get("compare") or []],
        baselines=[str(b) for b in raw.get("baselines") or []],
        text=text,
    )
    if "quick" in raw:
        cfg.quick = overrides(DEFAULT_QUICK) + overrides(raw["quick"])
    _check_plots(path, cfg)
    for axis in cfg.compare:
        if axis not in cfg.grid or axis == cfg.seed_axis:
            others = [a for a in cfg.grid if a != cfg.seed_axis]
            raise UsageError(
                f"{path}: compare names axis {axis!r}; the grid's non-seed axes: "
                f"{', '.join(others) or 'none'}"
            )
    return cfg


def _grid(path: Path, raw: Any) -> dict[str, dict[str, list[str]]]:
    if not isinstance(raw, Mapping):
        raise UsageError(f"{path}: 'grid' maps each axis to its options {{label: overrides}}")
    grid = {}
    for axis, options in raw.items():
        if not isinstance(options, Mapping) or not options:
            raise UsageError(f"{path}: grid axis {axis!r} needs options {{label: overrides}}")
        for label, spec in options.items():
            if not isinstance(spec, (Mapping, list)):
                raise UsageError(
                    f"{path}: grid option {axis}={label} is {spec!r}; give its overrides as a "
                    "mapping {key: value} or a list of arguments"
                )
        grid[str(axis)] = {str(label): overrides(spec) for label, spec in options.items()}
    return grid


def _space(path: Path, raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise UsageError(f"{path}: 'space' maps each option to {{choices: [...]}} or {{low, high}}")
    for key, spec in raw.items():
        ranged = isinstance(spec, Mapping) and "low" in spec and "high" in spec
        chosen = isinstance(spec, Mapping) and isinstance(spec.get("choices"), list)
        if not (ranged or chosen):
            raise UsageError(
                f"{path}: space option {key!r} needs {{choices: [...]}} or {{low: ..., high: ...}}"
            )
    return {str(key): dict(spec) for key, spec in raw.items()}


def _check_plots(path: Path, cfg: SweepConfig) -> None:
    """Each plot has a known kind and a metric, and names axes of the grid."""
    for spec in cfg.plots:
        if not isinstance(spec, Mapping):
            raise UsageError(f"{path}: each plot is a mapping {{kind: ..., metric: ...}}")
        if spec.get("kind") not in PLOT_KINDS:
            raise UsageError(
                f"{path}: plot kind {spec.get('kind')!r} is not one of {', '.join(PLOT_KINDS)}"
            )
        if "metric" not in spec:
            raise UsageError(f"{path}: a {spec['kind']} plot needs 'metric'")
        named = [spec.get(k) for k in ("group", "facet", "hue")] + list(spec.get("where") or {})
        for axis in named:
            if axis is not None and cfg.grid and str(axis) not in cfg.grid:
                raise UsageError(
                    f"{path}: plot of {spec['metric']} names axis {axis!r}; the grid's axes: "
                    f"{', '.join(cfg.grid)}"
                )
