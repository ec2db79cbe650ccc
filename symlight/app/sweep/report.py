"""A sweep's report, from its record (:mod:`symlight.app.sweep.record`) alone: a markdown table of
mean ± std over the seed axis, paired differences between options with their 95% intervals
(:mod:`symlight.app.sweep.paired`), the failed trials, and the plots the config asks for.

Plot kinds (``plots:`` in a sweep config), each with ``metric``, ``group`` (one line or bar per
option of that axis), optional ``facet`` (one panel per option), ``where`` (``{axis: label or
[labels]}`` keeps those trials only), ``name`` (file stem) and ``title``:

- ``curve``: the metric against training steps (the record's ``curve/METRIC`` column);
- ``size``: the metric against set size, from ``metric`` at ``train_n`` and ``metric@n=K``;
- ``params``: the metric against the network's parameter count, one point per grid cell;
- ``bar``: the metric per option of ``group``, side by side per option of ``hue``.

Error bars are the standard deviation over the seeds of a cell. A metric whose values all lie
within [0, 1] (an accuracy, a fraction) is drawn on a y-axis from 0 to 1. The same record gives
the same ``results.md``, byte for byte.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from symlight.app.sweep.config import SweepConfig  # noqa: E402
from symlight.app.sweep.paired import baseline_column, comparisons  # noqa: E402
from symlight.app.sweep.record import option_column, parse_curve, read_record  # noqa: E402

__all__ = [
    "Failure",
    "completed",
    "failures",
    "figure",
    "plot",
    "plot_all",
    "report",
    "results_table",
]

INTEGER = ("params", "steps")


@dataclass(frozen=True)
class Failure:
    """A failed trial: its number, grid point (``net=max, seed=0``), error line and log file."""

    trial: int
    point: str
    reason: str
    log: str | None = None


def report(path: Path, out: Path) -> list[Path]:
    """Write ``out/results.md`` and ``out/plots/*.png`` from the record at ``path``; returns the
    paths written.
    """
    cfg, record = read_record(path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(results_table(record, cfg))
    return [out / "results.md", *plot_all(record, cfg, out)]


def completed(record: pd.DataFrame) -> pd.DataFrame:
    """The record's complete trials."""
    return record[record["state"] == "COMPLETE"]


def failures(record: pd.DataFrame, cfg: SweepConfig) -> list[Failure]:
    """The record's failed trials, each with its grid point, error line and log."""
    keys = [*cfg.grid, *cfg.space]
    found = []
    for _, row in record[record["state"] == "FAIL"].iterrows():
        point = ", ".join(f"{k}={row[option_column(cfg, k)]}" for k in keys)
        said, run = row.get("error"), row.get("run")
        found.append(
            Failure(
                int(row["trial"]),
                point,
                said if isinstance(said, str) else "no error recorded",
                f"{run}/fit.log" if isinstance(run, str) else None,
            )
        )
    return found


def _fmt(values: Sequence[float], integer: bool = False) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "–"
    mean = sum(values) / len(values)
    std = _std(values)
    if abs(mean) >= 1000 or integer:
        return f"{mean:.0f}" if len(values) == 1 else f"{mean:.0f} ± {std:.0f}"
    return f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f} ± {std:.3f}"


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _axes(cfg: SweepConfig) -> list[str]:
    return [axis for axis in cfg.grid if axis != cfg.seed_axis]


def _cells(
    done: pd.DataFrame, cfg: SweepConfig, keys: Sequence[str]
) -> list[tuple[tuple, pd.DataFrame]]:
    """Groups of trials by the given axes, in the config's order of options."""
    if not keys:
        return [((), done)]
    order = [list(cfg.grid[k]) for k in keys]
    groups = done.groupby([f"grid/{k}" for k in keys], sort=False)
    items = [((g,) if not isinstance(g, tuple) else g, rows) for g, rows in groups]
    return sorted(items, key=lambda item: [o.index(v) for o, v in zip(order, item[0])])


def _columns(done: pd.DataFrame, cfg: SweepConfig) -> list[str]:
    """The table's metric columns: each metric with its baselines beside it, then the costs."""
    columns = []
    for metric in cfg.metrics:
        columns += [metric, *(baseline_column(metric, b) for b in cfg.baselines)]
    return [c for c in [*columns, "params", "steps", "seconds"] if c in done]


def results_table(record: pd.DataFrame, cfg: SweepConfig) -> str:
    """The markdown report of a record: one row per cell of the non-seed axes with mean ± std of
    each metric (and of its baselines), the paired differences, then each failed trial.
    """
    done = completed(record)
    failed = failures(record, cfg)
    lines = [f"# {cfg.name}: objective {cfg.objective} ({cfg.direction})", ""]
    said = f"; {len(failed)} failed (listed below)" if failed else ""
    lines += [f"{len(done)} complete trials of {cfg.total}{said}.", ""]
    metrics = _columns(done, cfg)
    if cfg.grid:
        axes = _axes(cfg)
        seeds = cfg.seed_axis in cfg.grid
        head = [*axes, *(["seeds"] if seeds else []), *metrics]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key, rows in _cells(done, cfg, axes):
            cells = [str(k) for k in key] + ([str(len(rows))] if seeds else [])
            cells += [_fmt(rows[m].astype(float).tolist(), m in INTEGER) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        if seeds:
            lines += ["", f"mean ± std over the {cfg.seed_axis} axis."]
        paired = comparisons(done, cfg)
        if paired:
            lines += ["", paired.rstrip("\n")]
    else:
        keys = list(cfg.space)
        head = ["trial", *keys, *metrics]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        best = done.sort_values(
            [cfg.objective, "trial"], ascending=[cfg.direction == "minimize", True]
        )
        for _, row in best.head(20).iterrows():
            cells = [str(row["trial"]), *[str(row[option_column(cfg, k)]) for k in keys]]
            cells += [_fmt([float(row[m])], m in INTEGER) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", f"## Failed trials ({len(failed)})", ""]
        for failure in failed:
            log = f" (log: `{failure.log}`)" if failure.log else ""
            lines.append(f"- trial {failure.trial} ({failure.point}): {failure.reason}{log}")
    return "\n".join(lines) + "\n"


# -- plots ----------------------------------------------------------------------------------------
def _where(done: pd.DataFrame, where: Mapping[str, Any] | None) -> pd.DataFrame:
    for axis, keep in (where or {}).items():
        keep = [str(k) for k in (keep if isinstance(keep, list) else [keep])]
        done = done[done[f"grid/{axis}"].astype(str).isin(keep)]
    return done


def _panels(n: int, title: str):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.2 * cols, 7.0), 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return fig, list(axes.flat)


def _mean_std(series: Sequence[Mapping[Any, float]]) -> tuple[list, list[float], list[float]]:
    xs = sorted(set.intersection(*(set(s) for s in series))) if series else []
    means = [sum(s[x] for s in series) / len(series) for x in xs]
    stds = [_std([s[x] for s in series]) for x in xs]
    return xs, means, stds


def plot(done: pd.DataFrame, cfg: SweepConfig, spec: Mapping[str, Any], out: Path) -> Path:
    """Draw one plot of a sweep config's ``plots`` list into ``out/plots``; returns the PNG's path."""
    kind, metric, group = spec["kind"], spec["metric"], spec.get("group")
    name = spec.get("name") or re.sub(r"[^\w]+", "_", f"{kind}_{metric}_{group}").strip("_")
    fig = figure(done, cfg, spec)
    path = out / "plots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def figure(done: pd.DataFrame, cfg: SweepConfig, spec: Mapping[str, Any]):
    """The matplotlib figure of one plot spec, from a record's complete trials ``done``."""
    kind, metric, group = spec["kind"], spec["metric"], spec.get("group")
    facet = spec.get("facet")
    done = _where(done, spec.get("where"))
    seeds = f"mean ± std over {cfg.seed_axis}s" if cfg.seed_axis in cfg.grid else ""
    title = spec.get("title", f"{cfg.name}: {metric}") + (f" ({seeds})" if seeds else "")
    facets = _cells(done, cfg, [facet]) if facet else [((), done)]
    fig, axes = _panels(max(len(facets), 1), title)
    shown: list[float] = []  # every value drawn, before averaging
    for ax, (fkey, fdone) in zip(axes, facets):
        if fkey:
            ax.set_title(f"{facet} = {fkey[0]}", fontsize=9)
        if kind != "curve":
            shown += _values(fdone, metric, sizes=kind == "size")
        if kind == "bar":
            _bars(ax, fdone, cfg, metric, group, spec.get("hue"))
        elif kind == "params":
            _params(ax, fdone, cfg, metric, group)
        else:
            for gkey, rows in _cells(fdone, cfg, [group] if group else []):
                if kind == "curve":
                    column = rows.get(f"curve/{metric}", pd.Series(dtype=object))
                    series = [parse_curve(text) for text in column]
                    shown += [v for one in series for v in one.values()]
                    xs, ys, es = _mean_std([s for s in series if s])
                    ax.set_xlabel("training steps")
                elif kind == "size":
                    xs, ys, es = _sizes(rows, metric, int(spec.get("train_n", 10)))
                    ax.set_xscale("log")
                    ax.set_xlabel(f"set size n (trained at n = {int(spec.get('train_n', 10))})")
                else:
                    raise ValueError(f"unknown plot kind {kind!r}: curve, size, params or bar")
                label = str(gkey[0]) if gkey else metric
                ax.errorbar(xs, ys, yerr=es, marker="o", ms=3, capsize=2, label=label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    finite = [v for v in shown if v == v]
    if finite and min(finite) >= 0:
        # an accuracy keeps [0, 1] (error bars do not stretch it); an error or a regret its own range
        top = 1 if 0.5 < max(finite) <= 1 else None  # None: the top stays where it is
        for ax in axes[: len(facets)]:
            ax.set_ylim(0, top)
    if facets and axes[0].get_legend_handles_labels()[1]:
        axes[0].legend(
            fontsize=7, title=spec.get("hue") if kind == "bar" else group, title_fontsize=7
        )
    fig.tight_layout()
    return fig


def _values(rows: pd.DataFrame, metric: str, sizes: bool = False) -> list[float]:
    """The values of ``metric`` in ``rows`` (with ``sizes``, also those of ``metric@n=K``)."""
    columns = [metric]
    if sizes:
        pattern = rf"{re.escape(metric)}@n=\d+"
        columns += [c for c in rows.columns if re.fullmatch(pattern, c)]
    return [float(v) for c in columns if c in rows for v in rows[c].astype(float) if v == v]


def _sizes(rows: pd.DataFrame, metric: str, train_n: int) -> tuple[list, list, list]:
    columns = {train_n: metric}
    for column in rows.columns:
        found = re.fullmatch(rf"{re.escape(metric)}@n=(\d+)", column)
        if found:
            columns[int(found.group(1))] = column
    xs, ys, es = [], [], []
    for n in sorted(columns):
        values = [v for v in rows[columns[n]].astype(float) if v == v] if columns[n] in rows else []
        if values:
            xs.append(n)
            ys.append(sum(values) / len(values))
            es.append(_std(values))
    return xs, ys, es


def _params(ax, done: pd.DataFrame, cfg: SweepConfig, metric: str, group: str | None) -> None:
    axes = _axes(cfg)
    for gkey, rows in _cells(done, cfg, [group] if group else []):
        xs, ys, es = [], [], []
        for _, cell in _cells(rows, cfg, [a for a in axes if a != group]):
            xs.append(cell["params"].astype(float).mean())
            values = cell[metric].astype(float).tolist()
            ys.append(sum(values) / len(values))
            es.append(_std(values))
        ax.errorbar(
            xs, ys, yerr=es, marker="o", ls="", capsize=2, label=str(gkey[0]) if gkey else None
        )
    ax.set_xscale("log")
    ax.set_xlabel("parameters")


def _bars(
    ax, done: pd.DataFrame, cfg: SweepConfig, metric: str, group: str, hue: str | None
) -> None:
    labels = [k[0] for k, _ in _cells(done, cfg, [group])]
    hues = [k for k, _ in _cells(done, cfg, [hue])] if hue else [()]
    width = 0.8 / len(hues)
    for i, hkey in enumerate(hues):
        rows = done if not hkey else done[done[f"grid/{hue}"] == hkey[0]]
        ys, es = [], []
        for label in labels:
            values = rows[rows[f"grid/{group}"] == label][metric].astype(float)
            ys.append(values.mean() if len(values) else float("nan"))
            es.append(_std(values.tolist()))
        xs = [j + (i - (len(hues) - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, ys, width, yerr=es, capsize=2, label=str(hkey[0]) if hkey else None)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)


def plot_all(record: pd.DataFrame, cfg: SweepConfig, out: Path) -> list[Path]:
    """Every plot of the sweep config, from a record; none when no trial has completed."""
    done = completed(record)
    if done.empty:
        return []
    return [plot(done, cfg, spec, out) for spec in cfg.plots]
