"""Paired comparisons of a sweep's options over seeds, with 95% t-intervals.

Two options of one grid axis are compared with every other axis fixed (a budget axis included, so
each comparison is made per budget), seed by seed: the trials of one seed share their data and
their initialisation seed, so the difference ``A - B`` of a seed is a paired difference. Over the
``n`` seeds both options completed, the report gives the mean difference and its 95% t-interval,
``mean ± t(0.975, n - 1) · sd / √n`` (``sd`` the sample standard deviation of the differences,
with ``n - 1`` in the denominator). Where the interval contains 0 the report says "no difference
found at this budget"; with one seed there is no interval. A task's baseline figure (a column named
``STEM_BASELINE@SUFFIX`` beside a metric ``STEM@SUFFIX``, for each name of the config's
``baselines``) is compared with the networks the same way: the network's metric minus the
baseline's, on the same seed's data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from symlight.app.sweep.config import SweepConfig

__all__ = ["LEVEL", "NO_DIFFERENCE", "Interval", "baseline_column", "comparisons", "interval"]

LEVEL = 0.95
NO_DIFFERENCE = "no difference found at this budget"
EXPLAINED = (
    "Each row compares two options of one axis, every other axis fixed (a budget axis too), seed "
    "by seed (a seed draws the same data for both): the mean of the n paired differences A − B "
    "and its 95% t-interval, mean ± t(0.975, n − 1) · sd / √n. Where the interval contains 0, no "
    "difference was found at this budget (the row's budget axis, or the steps column above)."
)
AGAINST_BASELINES = (
    "Against a baseline, the difference is the network's figure minus the baseline's on the same "
    "seed's data."
)


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` paired differences and its t-interval (``low``, ``high``: NaN for n < 2)."""

    n: int
    mean: float
    low: float
    high: float

    @property
    def contains_zero(self) -> bool:
        return self.low <= 0 <= self.high


def interval(differences: Sequence[float], level: float = LEVEL) -> Interval:
    """The ``level`` t-interval of the mean of paired ``differences``.

    >>> found = interval([0.1, 0.3, 0.2])  # mean 0.2, sd 0.1, t(0.975, 2) = 4.303
    >>> found.n, round(found.mean, 6), round(found.low, 6), round(found.high, 6)
    (3, 0.2, -0.048414, 0.448414)
    """
    n = len(differences)
    mean = math.fsum(differences) / n
    if n < 2:
        return Interval(n, mean, math.nan, math.nan)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(n, mean, mean - half, mean + half)


def baseline_column(metric: str, baseline: str) -> str:
    """The column of a baseline's figure for ``metric``.

    >>> baseline_column("val/regret@k=10,n=100", "thompson")
    'val/regret_thompson@k=10,n=100'
    """
    stem, at, suffix = metric.partition("@")
    return f"{stem}_{baseline}{at}{suffix}"


def signed(value: float) -> str:
    """A difference with its sign, as the tables show it (0 without one)."""
    text = f"{value:+.0f}" if abs(value) >= 1000 else f"{value:+.3f}"
    return text[1:] if float(text) == 0 else text


def _verdict(found: Interval, a: str, b: str) -> str:
    if found.n < 2:
        return "one seed: no interval"
    if found.contains_zero:
        return NO_DIFFERENCE
    return f"{a} {'higher' if found.mean > 0 else 'lower'} than {b}"


def _cells(done: pd.DataFrame, cfg: SweepConfig, axes: Sequence[str]):
    """``(labels, rows)`` per combination of options of ``axes``, in the config's order."""
    if not axes:
        yield (), done
        return
    order = [list(cfg.grid[a]) for a in axes]
    groups = done.groupby([f"grid/{a}" for a in axes], sort=False)
    items = [(key if isinstance(key, tuple) else (key,), rows) for key, rows in groups]
    yield from sorted(items, key=lambda item: [o.index(v) for o, v in zip(order, item[0])])


def _by_seed(rows: pd.DataFrame, cfg: SweepConfig, column: str) -> dict[str, float]:
    if column not in rows:
        return {}
    values = rows.set_index(f"grid/{cfg.seed_axis}")[column].astype(float)
    return {seed: v for seed, v in values.items() if v == v}


def _paired(a: dict[str, float], b: dict[str, float], seeds: Sequence[str]) -> list[float]:
    return [a[s] - b[s] for s in seeds if s in a and s in b]


def _row(cells: list[str], found: Interval, verdict: str) -> str:
    span = "–" if found.n < 2 else f"[{signed(found.low)}, {signed(found.high)}]"
    return "| " + " | ".join([*cells, str(found.n), signed(found.mean), span, verdict]) + " |"


def _table(head: list[str], rows: list[str]) -> list[str]:
    head = [*head, "seeds", "mean difference", f"{LEVEL:.0%} interval", "result"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows, ""]


def comparisons(done: pd.DataFrame, cfg: SweepConfig) -> str:
    """The markdown section of paired comparisons of the complete trials ``done`` (a record's)."""
    if cfg.seed_axis not in cfg.grid:
        return ""
    seeds = list(cfg.grid[cfg.seed_axis])
    axes = [a for a in cfg.grid if a != cfg.seed_axis]
    metrics = [m for m in cfg.metrics if m in done]
    said = EXPLAINED + (" " + AGAINST_BASELINES if cfg.baselines else "")
    lines = ["## Paired differences", "", said, ""]
    for metric in metrics:
        for axis in cfg.compared:
            others = [a for a in axes if a != axis]
            options = list(cfg.grid[axis])
            rows = []
            for labels, cell in _cells(done, cfg, others):
                values = {
                    o: _by_seed(cell[cell[f"grid/{axis}"] == o], cfg, metric) for o in options
                }
                for i, a in enumerate(options):
                    for b in options[i + 1 :]:
                        diffs = _paired(values[a], values[b], seeds)
                        if diffs:
                            found = interval(diffs)
                            rows.append(_row([*labels, a, b], found, _verdict(found, a, b)))
            if rows:
                lines += [f"### {metric}: {axis} A − {axis} B", ""]
                lines += _table([*others, f"{axis} A", f"{axis} B"], rows)
        rows = []
        for name in cfg.baselines:
            column = baseline_column(metric, name)
            if column not in done:
                continue
            for labels, cell in _cells(done, cfg, axes):
                diffs = _paired(_by_seed(cell, cfg, metric), _by_seed(cell, cfg, column), seeds)
                if diffs:
                    found = interval(diffs)
                    rows.append(_row([*labels, name], found, _verdict(found, "network", name)))
        if rows:
            lines += [f"### {metric}: network − baseline", ""]
            lines += _table([*axes, "baseline"], rows)
    return "\n".join(lines) if len(lines) > 4 else ""
