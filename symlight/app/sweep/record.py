"""A sweep's record: one CSV with the sweep config and one row per trial, all that a report needs.

``python -m symlight sweep`` writes it as ``<out>/<name>.csv``; ``python -m symlight sweep --report
NAME.csv`` rebuilds the report from it alone, with no fit and no Optuna storage. The file opens with
``# symlight sweep NAME`` and the sweep config as it was written, each line after ``# ``; then the
trials, one row each, by trial number:

- ``trial``, ``state``: the Optuna trial number and ``COMPLETE`` or ``FAIL``. The rows are the
  complete trial of each grid point (the latest, when a point ran twice) and the failures that stand
  (a failed point that no later trial completed);
- ``grid/AXIS`` (``space/KEY`` for a search space): the trial's option of each axis, seed included;
- ``params``, ``steps``, ``seconds``: the network's parameter count, the optimizer steps and the
  wall-clock seconds of its fit;
- one column per final metric the fit logged (``val/acc``, ``val/acc@n=100``, ...), the objective
  and the task's baseline figures among them;
- ``run``, ``error``: the trial's run folder under the sweep's output, and a failed trial's error
  line;
- ``curve/METRIC``: the metric at each logged training step, ``STEP:VALUE`` pairs separated by
  spaces, for each metric a ``curve`` plot draws (read from the trial's TensorBoard events).

Read it with ``pandas.read_csv(path, comment="#")`` elsewhere; here the header is read as the config.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from symlight.app.cli import UsageError
from symlight.app.sweep.config import SweepConfig, parse_sweep

__all__ = ["HEADER", "curve_text", "parse_curve", "read_record", "sweep_record", "write_record"]

HEADER = "# symlight sweep "
FIXED = ("params", "steps", "seconds")
NOT_METRICS = {"run", "error", "worker", *FIXED}


def option_column(cfg: SweepConfig, key: str) -> str:
    """The column of a grid axis (``grid/net``) or of a search-space key (``space/KEY``)."""
    return f"grid/{key}" if cfg.grid else f"space/{key}"


def curve_metrics(cfg: SweepConfig) -> list[str]:
    """The metrics that the config's ``curve`` plots draw."""
    return sorted({str(spec["metric"]) for spec in cfg.plots if spec.get("kind") == "curve"})


def curve_text(points: Mapping[int, float]) -> str:
    """``{step: value}`` as the record stores it.

    >>> curve_text({20: 0.5, 10: 0.25})
    '10:0.25 20:0.5'
    """
    return " ".join(f"{step}:{float(points[step])!r}" for step in sorted(points))


def parse_curve(text: object) -> dict[int, float]:
    """The ``{step: value}`` of a ``curve/METRIC`` cell (empty for an empty cell).

    >>> parse_curve("10:0.25 20:0.5")
    {10: 0.25, 20: 0.5}
    """
    if not isinstance(text, str):
        return {}
    pairs = (item.split(":") for item in text.split())
    return {int(step): float(value) for step, value in pairs}


def tensorboard_curve(run: Path, tag: str) -> dict[int, float]:
    """``{step: value}`` of a scalar in a run folder's TensorBoard events (empty if it has none)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not run.is_dir():
        return {}
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return {}
    return {s.step: s.value for s in events.Scalars(tag)}


def sweep_record(
    frame: pd.DataFrame, cfg: SweepConfig, failures: Mapping[int, str], out: Path
) -> pd.DataFrame:
    """The record of a study: from Optuna's ``trials_dataframe()`` ``frame``, the complete trial of
    each grid point, and the failed trials of ``failures`` (``{trial number: error line}``); the
    curves are read from the trials' runs under the sweep's output folder ``out``.
    """
    if frame.empty or "state" not in frame:
        frame = pd.DataFrame({"number": [], "state": []})
    keys = [f"params_{axis}" for axis in cfg.grid if f"params_{axis}" in frame]
    done = frame[frame["state"] == "COMPLETE"].sort_values("number")
    if keys:
        done = done.drop_duplicates(keys, keep="last")
    failed = frame[(frame["state"] == "FAIL") & frame["number"].isin(list(failures))]
    rows = pd.concat([done, failed]).sort_values("number")
    record = pd.DataFrame({"trial": rows["number"].astype(int), "state": rows["state"]})
    for key in [*cfg.grid, *cfg.space]:
        column = f"params_{key}"
        record[option_column(cfg, key)] = rows[column] if column in rows else None
    attrs = sorted(c.removeprefix("user_attrs_") for c in rows if c.startswith("user_attrs_"))
    metrics = [a for a in attrs if a not in NOT_METRICS]
    for name in [*FIXED, *metrics]:
        column = f"user_attrs_{name}"
        record[name] = rows[column] if column in rows else float("nan")
    for name in ("run", "error"):
        column = f"user_attrs_{name}"
        record[name] = rows[column] if column in rows else None
    record.loc[record["state"] == "COMPLETE", "error"] = None
    failing = record["state"] == "FAIL"
    record.loc[failing, "error"] = [failures[int(n)] for n in record.loc[failing, "trial"]]
    for metric in curve_metrics(cfg):
        record[f"curve/{metric}"] = [
            curve_text(tensorboard_curve(out / run, metric)) or None
            if state == "COMPLETE" and isinstance(run, str)
            else None
            for state, run in zip(record["state"], record["run"])
        ]
    return record.reset_index(drop=True)


def write_record(record: pd.DataFrame, cfg: SweepConfig, path: Path) -> None:
    """Write ``record`` to ``path`` under a header: the sweep's name and its config as written."""
    lines = [HEADER + cfg.name] + [f"# {line}".rstrip() for line in cfg.text.splitlines()]
    body = record.to_csv(index=False, lineterminator="\n")
    path.write_text("\n".join(lines) + "\n" + body)


def read_record(path: Path) -> tuple[SweepConfig, pd.DataFrame]:
    """The sweep config and the trials of a record written by :func:`write_record`; a file that
    is missing or is not such a record is a one-line :class:`UsageError`.
    """
    if not path.is_file():
        raise UsageError(f"sweep --report: no such file {path}")
    lines = path.read_text().splitlines(keepends=True)
    if not lines or not lines[0].startswith(HEADER):
        raise UsageError(
            f"sweep --report: {path} is not a sweep record (its first line is not "
            f"'{HEADER}NAME'; the sweep writes one as <out>/<name>.csv)"
        )
    name = lines[0].removeprefix(HEADER).strip()
    header = [line for line in lines[1:] if line.startswith("#")]
    text = "".join(re.sub(r"^# ?", "", line) for line in header)
    cfg = parse_sweep(text, path, name=name)
    options = {option_column(cfg, key): str for key in cfg.grid}
    body = "".join(lines[1 + len(header) :])
    try:
        record = pd.read_csv(io.StringIO(body), dtype=options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        said = str(error).strip().splitlines()[0] if str(error).strip() else "no rows"
        raise UsageError(f"sweep --report: {path}: not a CSV table: {said}") from None
    missing = [c for c in ("trial", "state", *options) if c not in record]
    if missing:
        raise UsageError(f"sweep --report: {path} has no column {', '.join(missing)}")
    return cfg, record
