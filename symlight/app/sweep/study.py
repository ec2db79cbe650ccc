"""``python -m symlight sweep``: a grid or a search space of ordinary fits, run as an Optuna study.

    python -m symlight sweep --config sweeps/argmax_targets.yaml            # run (or finish) it
    python -m symlight sweep --config sweeps/argmax_targets.yaml --workers 2
    python -m symlight sweep --config argmax_targets --quick                # tiny budgets: a smoke run
    python -m symlight sweep --config argmax_targets --storage postgresql://host/db   # many machines
    python -m symlight sweep --config argmax_targets --no-run               # re-export results only
    python -m symlight sweep --report docs/heuristics/argmax_targets.csv    # report from a record

A sweep config names a base CLI config, the overrides every trial gets, and either a ``grid`` (axes of
named options, each a set of CLI overrides; Optuna's ``GridSampler`` visits every combination) or a
``space`` of hyper-parameters with ``n_trials`` (Optuna's default sampler). Each trial is an ordinary
``python -m symlight fit`` (``symlight.app.cli.main``), by default in its own process, logging to its own
TensorBoard folder ``<out>/runs/trial_NNNN``. The trial's value is the final ``objective`` metric; all
final metrics, the network's parameter count, the steps and seconds are stored as user attributes.
Before the first trial, the fit command of every grid point (or search-space value) is parsed, not
run: a bad override is one line naming it and its grid point, and exit status 2. A fit's own output
goes to its ``fit.log``; a failed trial is one line on the console and in ``results.md``, and a
sweep with failed trials exits with status 1.

Optuna's storage is the record: by default ``<out>/study.db`` (SQLite). A re-run skips finished
trials and re-runs the failed ones; a trial left running by a process that died is failed by Optuna's
heartbeat once it is stale and queued again by Optuna's retry callback. ``--workers N`` starts N worker
processes on the same storage; several machines share a PostgreSQL or MySQL ``--storage`` URL.
Afterwards the trials are exported to ``<out>/trials.csv`` (``study.trials_dataframe()``) and to the
sweep's record ``<out>/<name>.csv`` (its config and one row per trial,
:mod:`symlight.app.sweep.record`); from the record alone come a markdown table of mean ± std over
seeds with paired differences and their intervals (``<out>/results.md``) and the plots the config
asks for (``<out>/plots/*.png``). ``--report RECORD.csv`` rebuilds those from a record, with no fit.

A ``postgresql://`` URL needs a driver: ``pip install -e ".[postgres]"`` installs psycopg 3, and
the URL is read as ``postgresql+psycopg://`` when psycopg2 is not installed. A storage whose driver
is missing, or whose server cannot be reached, is one line (the URL without its password) and exit
status 2. The heartbeat's interval and grace period (:data:`HEARTBEAT_S`, :data:`GRACE_S`) can be
set in whole seconds with the environment variables ``SYMLIGHT_SWEEP_HEARTBEAT_S`` and
``SYMLIGHT_SWEEP_GRACE_S``, the same for every worker of a study: a shorter grace re-runs a dead
worker's trial sooner, and fails a live worker's trial that cannot write its heartbeat in time.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from symlight.app.argv import pre_parse
from symlight.app.cli import (
    CLASS_GROUPS,
    PROG,
    UsageError,
    command_parser,
    quiet_run,
    resolve,
)
from symlight.app.cli import run as run_cli
from symlight.app.parse_errors import ParserError, explain
from symlight.app.sweep.config import SweepConfig, cli_value, load_sweep
from symlight.app.sweep.record import sweep_record, write_record
from symlight.app.sweep.report import Failure, report

__all__ = ["SweepConfig", "check_overrides", "fit_trial", "load_sweep", "main", "run_sweep"]

HOST = socket.gethostname()
HEARTBEAT_S, GRACE_S = 10, 30
"""Optuna's heartbeat: a running trial's worker writes one every HEARTBEAT_S seconds; a trial
without one for GRACE_S seconds is stale (its worker died): failed, and queued again. The
environment variables SYMLIGHT_SWEEP_HEARTBEAT_S and SYMLIGHT_SWEEP_GRACE_S override them."""
RETRIES = 3
"""How often one trial is queued again after failing (by an error, or stale)."""
POLL_S = 2
"""How often an idle worker looks at the trials that other workers are running."""


class TrialError(RuntimeError):
    """A trial's fit failed or did not log the objective; the sweep goes on with the next trial."""


# -- checking the overrides before any trial ------------------------------------------------------
def _checks(cfg: SweepConfig) -> Iterator[tuple[str, list[str]]]:
    """``(what, overrides)`` of each trial to check: every grid point; or every value of the
    search space (each choice, both ends of a range), the other options at their first value.
    """
    for labels in itertools.product(*(list(o) for o in cfg.grid.values())):
        point = ", ".join(f"{a}={label}" for a, label in zip(cfg.grid, labels))
        args = [arg for a, label in zip(cfg.grid, labels) for arg in cfg.grid[a][label]]
        yield f"grid point {point}", args
    values = {}
    for key, spec in cfg.space.items():
        ends = spec["choices"] if "choices" in spec else [spec["low"], spec["high"]]
        values[key] = [cli_value(value) for value in ends]
    for key, options in values.items():
        for value in options:
            chosen = {**{k: v[0] for k, v in values.items()}, key: value}
            yield f"search space {key}={value}", [f"--{k}={v}" for k, v in chosen.items()]


def check_overrides(cfg: SweepConfig, out: Path, quick: bool) -> None:
    """Parse the fit command of every grid point (or search-space value) as its trial will run
    it, instantiating nothing; the first mistake is a one-line :class:`UsageError` naming the
    option and the grid point.
    """
    parser = command_parser()
    with quiet_run():
        for what, args in _checks(cfg):
            fit_args = _fit_args(cfg, args, quick, out, "trial_check")
            try:
                line = resolve(pre_parse(fit_args))
                parser.parse_args(line.args())
            except UsageError as error:
                raise UsageError(f"{cfg.path.name}, {what}: {error}") from None
            except ParserError as error:
                message = explain(error.parser, line.configs, line.rest, CLASS_GROUPS, error.error)
                raise UsageError(f"{cfg.path.name}, {what}: {message}") from None


# -- one trial ------------------------------------------------------------------------------------
def fit_trial(result_path: str, args: list[str]) -> None:
    """Run one fit through the CLI (:func:`symlight.app.cli.run`) and write its final numbers as JSON."""
    cli = run_cli(args)
    trainer = cli.trainer
    metrics = {
        key: float(value)
        for key, value in trainer.callback_metrics.items()
        if value.numel() == 1 and not key.endswith("_step")
    }
    result = {
        "metrics": {key.removesuffix("_epoch"): value for key, value in metrics.items()},
        "params": sum(p.numel() for p in cli.model.parameters()),
        "steps": int(trainer.global_step),
    }
    Path(result_path).write_text(json.dumps(result))


def trial_main(argv: Sequence[str] | None = None) -> None:
    """A trial in its own process: ``RESULT_PATH FIT_ARGS...``; a mistake in the command ends with
    one line, ``symlight: error: MESSAGE``, and exit status 2, as the command line does.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        fit_trial(argv[0], argv[1:])
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        raise


ERROR_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)|symlight: error)\b:?"
)


def reason(log: str) -> str:
    r"""The error line of a failed fit's output: ``symlight: error: ...`` or the traceback's last
    line (``ValueError: ...``), else the last line.

    >>> reason("Traceback (most recent call last):\n  ...\nValueError: no such pooling\n")
    'ValueError: no such pooling'
    """
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    said = (errors or lines or [""])[-1]
    return said.removeprefix(f"{PROG}: error: ")[:400]


ARGS_WARNING = "LightningCLI's args parameter"
"""Lightning's warning that a fit is given ``args`` in a process that has command-line arguments:
what an in-process trial does on purpose."""


@contextlib.contextmanager
def _output_to(log: IO[str]) -> Iterator[None]:
    """Everything a fit prints, warns or logs goes to ``log``: stdout, stderr, and the logging
    handlers (Lightning's own, the root's) that write to the console.
    """
    console = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    moved = []
    for name in (None, "lightning", "lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            # Lightning's own handlers write to the console it saw when it was imported
            if type(handler) is logging.StreamHandler and (name or handler.stream in console):
                moved.append((handler, handler.setStream(log)))
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=ARGS_WARNING)
                yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def _run_fit(args: list[str], run: Path, timeout: float | None, in_process: bool) -> dict:
    run.mkdir(parents=True, exist_ok=True)
    result = run / "result.json"
    result.unlink(missing_ok=True)
    if in_process:
        with open(run / "fit.log", "w") as log:
            try:
                with _output_to(log):
                    fit_trial(str(result), args)
            except (Exception, SystemExit) as err:  # SystemExit: a UsageError, or an exit
                traceback.print_exception(err, file=log)
                said = str(err) if isinstance(err, UsageError) else _one_line(err)
                raise TrialError(said) from err
    else:
        cmd = [sys.executable, "-c", TRIAL_CODE, str(result), *args]
        with open(run / "fit.log", "w") as log:
            try:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TrialError(f"fit ran past the sweep's timeout of {timeout} s") from None
        if proc.returncode != 0:
            said = reason((run / "fit.log").read_text(errors="replace"))
            status = (
                f"killed by signal {-proc.returncode}"
                if proc.returncode < 0
                else f"exit status {proc.returncode}"
            )
            raise TrialError(f"{said} ({status})" if said else status)
    return json.loads(result.read_text())


TRIAL_CODE = "from symlight.app.sweep.study import trial_main; trial_main()"


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _logger_args(out: Path, version: str) -> list[str]:
    return [
        "--trainer.logger=symlight.training.RunLogger",
        f"--trainer.logger.init_args.save_dir={out}",
        "--trainer.logger.init_args.name=runs",
        f"--trainer.logger.init_args.version={version}",
        "--trainer.logger.init_args.default_hp_metric=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]


def _fit_args(cfg: SweepConfig, args: list[str], quick: bool, out: Path, version: str) -> list[str]:
    """The command line of a trial's fit: base, the sweep's args, the trial's, budgets, logger."""
    fit_args = ["fit", "--config", cfg.base, *cfg.args, *args]
    return fit_args + (cfg.quick if quick else []) + _logger_args(out, version)


class Objective:
    """Optuna objective: one fit per trial with the trial's overrides; returns the objective metric."""

    def __init__(self, study: optuna.Study, cfg: SweepConfig, out: Path, quick: bool) -> None:
        self.study, self.cfg, self.out, self.quick = study, cfg, out, quick

    def trial_args(self, trial: optuna.Trial) -> list[str]:
        cfg, args = self.cfg, []
        for axis, options in cfg.grid.items():
            args += options[trial.suggest_categorical(axis, list(options))]
        for key, spec in cfg.space.items():
            args.append(f"--{key}={cli_value(_suggest(trial, key, spec))}")
        return args

    def __call__(self, trial: optuna.Trial) -> float:
        cfg = self.cfg
        trial.set_user_attr("worker", f"{HOST}:{os.getpid()}")
        if trial.user_attrs.get("error"):  # a retry carries the failed trial's user attributes
            trial.set_user_attr("error", None)
        args = self.trial_args(trial)
        _skip_duplicate(self.study, trial)
        version = f"trial_{trial.number:04d}"
        fit_args = _fit_args(cfg, args, self.quick, self.out, version)
        trial.set_user_attr("run", f"runs/{version}")
        start = time.perf_counter()
        try:
            result = _run_fit(fit_args, self.out / "runs" / version, cfg.timeout, cfg.in_process)
        except TrialError as err:
            trial.set_user_attr("error", str(err))
            raise
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        trial.set_user_attr("params", result["params"])
        trial.set_user_attr("steps", result["steps"])
        for key, value in sorted(result["metrics"].items()):
            trial.set_user_attr(key, value)
        if cfg.objective not in result["metrics"]:
            logged = ", ".join(sorted(result["metrics"]))
            raise TrialError(f"objective {cfg.objective!r} was not logged; logged: {logged}")
        return result["metrics"][cfg.objective]


def _suggest(trial: optuna.Trial, key: str, spec: Mapping[str, Any]) -> Any:
    if "choices" in spec:
        return trial.suggest_categorical(key, list(spec["choices"]))
    low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
    if isinstance(low, int) and isinstance(high, int) and not log:
        return trial.suggest_int(key, low, high)
    return trial.suggest_float(key, float(low), float(high), log=log)


def _skip_duplicate(study: optuna.Study, trial: optuna.Trial) -> None:
    """Prune a trial whose grid point another worker is already running or has finished."""
    trials = study.get_trials(deepcopy=False)
    grid_id = next(t for t in trials if t.number == trial.number).system_attrs.get("grid_id")
    if grid_id is None:
        return
    for other in trials:
        same = other.system_attrs.get("grid_id") == grid_id and other.number != trial.number
        if same and other.state in (TrialState.COMPLETE, TrialState.RUNNING):
            if other.state == TrialState.COMPLETE or other.number < trial.number:
                raise optuna.TrialPruned(f"grid point {grid_id} is trial {other.number}'s")


# -- the study ------------------------------------------------------------------------------------
def heartbeat() -> tuple[int, int]:
    """``(interval, grace period)`` of Optuna's heartbeat, in seconds: :data:`HEARTBEAT_S` and
    :data:`GRACE_S`, or the environment's ``SYMLIGHT_SWEEP_HEARTBEAT_S`` and ``SYMLIGHT_SWEEP_GRACE_S``.
    """
    seconds = []
    for name, default in (("HEARTBEAT_S", HEARTBEAT_S), ("GRACE_S", GRACE_S)):
        text = os.environ.get(f"SYMLIGHT_SWEEP_{name}", str(default)).strip()
        if not text.isdigit() or int(text) < 1:
            raise UsageError(
                f"SYMLIGHT_SWEEP_{name}={text!r}: a whole number of seconds, at least 1"
            )
        seconds.append(int(text))
    interval, grace = seconds
    if grace <= interval:
        raise UsageError(
            f"the heartbeat's grace period ({grace} s) must be longer than its interval "
            f"({interval} s): SYMLIGHT_SWEEP_GRACE_S, SYMLIGHT_SWEEP_HEARTBEAT_S"
        )
    return interval, grace


def shown(url: str) -> str:
    """A storage URL as messages show it: without its password.

    >>> shown("postgresql://me:secret@db.lan:5432/sweeps")
    'postgresql://me:***@db.lan:5432/sweeps'
    """
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def with_driver(url: str) -> str:
    """``postgresql://`` with psycopg 3 when psycopg2 is absent (SQLAlchemy before 2.1 reads a
    plain ``postgresql://`` as psycopg2's); any other URL as it is.
    """
    parsed = sqlalchemy.engine.make_url(url)
    installed = importlib.util.find_spec
    if parsed.drivername == "postgresql" and not installed("psycopg2") and installed("psycopg"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats: a trial of a dead worker is failed once it is stale,
    and Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` queues it again.
    A URL that does not parse, a missing driver or a server that cannot be reached is a one-line
    :class:`UsageError` naming the URL without its password.
    """
    interval, grace = heartbeat()
    try:
        driven = with_driver(url)
    except sqlalchemy.exc.ArgumentError:
        raise UsageError(
            f"--storage {shown(url)!r} is not a database URL (e.g. postgresql://user@host/db)"
        ) from None
    engine = None
    if driven.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}
    elif driven.startswith("postgresql"):
        engine = {"connect_args": {"connect_timeout": 30}}
    try:
        return optuna.storages.RDBStorage(
            driven,
            engine_kwargs=engine,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=RETRIES
            ),
        )
    except ImportError as error:
        missing = error.__cause__ or error
        raise UsageError(
            f"storage {shown(url)}: its database driver is not installed ({missing}); for "
            'PostgreSQL: pip install -e ".[postgres]"'
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        said = " ".join(str(cause).split("\n")[0].split()) or type(cause).__name__
        raise UsageError(f"storage {shown(url)}: cannot open it: {said}") from None


def open_study(cfg: SweepConfig, url: str, name: str, quick: bool) -> optuna.Study:
    sampler = (
        optuna.samplers.GridSampler({a: list(o) for a, o in cfg.grid.items()}, seed=0)
        if cfg.grid
        else optuna.samplers.TPESampler(seed=0)
    )
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(url),
        sampler=sampler,
        direction=cfg.direction,
        load_if_exists=True,
    )
    stamp = cfg.fingerprint(quick)
    saved = study.user_attrs.get("fingerprint")
    if saved is None:
        study.set_user_attr("fingerprint", stamp)
        study.set_user_attr("config", str(cfg.path))
    elif saved != stamp:
        raise UsageError(
            f"study {name!r} in {shown(url)} was run with another version of {cfg.path.name} "
            "(its base, overrides, grid or budgets changed): pass --out DIR or --study NAME for a "
            "new study"
        )
    return study


def recover(study: optuna.Study) -> None:
    """Queue each failed trial once more (with Optuna's retry callback, at most :data:`RETRIES`
    times in a row), unless it was retried already or its grid point is done, running or queued.
    """
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES)
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    active = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    covered = {t.system_attrs.get("grid_id") for t in trials if t.state in active} - {None}
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in retried:
            if t.system_attrs.get("grid_id") not in covered:
                retry(study, t)


def failed_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The failures that stand: failed trials not queued again, whose grid point has not
    completed since (the latest one per grid point).
    """
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    done = {t.system_attrs.get("grid_id") for t in trials if t.state == TrialState.COMPLETE}
    latest: dict[Any, FrozenTrial] = {}
    for t in trials:
        point = t.system_attrs.get("grid_id")
        if t.state != TrialState.FAIL or t.number in retried or (point in done - {None}):
            continue
        key = ("trial", t.number) if point is None else point
        if key not in latest or latest[key].number < t.number:
            latest[key] = t
    return sorted(latest.values(), key=lambda t: t.number)


def _failure(trial: FrozenTrial) -> Failure:
    run = trial.user_attrs.get("run")
    said = trial.user_attrs.get("error") or "its worker stopped before the fit ended (no heartbeat)"
    point = ", ".join(f"{k}={v}" for k, v in trial.params.items())
    return Failure(trial.number, point, said, f"{run}/fit.log" if run else None)


def fail_orphans(teller: optuna.Study) -> None:
    """Fail, and queue again, the trials whose worker died before their first heartbeat.

    Optuna fails a trial as stale only once it has a heartbeat; a worker killed between creating
    a trial and its first heartbeat leaves it running forever. The objective marks a trial with
    its ``worker`` as it starts, so a running trial without that mark after :data:`GRACE_S`
    seconds has no worker. ``teller`` is the study loaded with a sampler that does not end the
    study when a trial finishes (a grid sampler's ``after_trial`` stops it, which only an
    optimising process may do).
    """
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES)
    now = datetime.now()
    for t in teller.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = t.datetime_start
        if "worker" in t.user_attrs or started is None:
            continue
        if (now - started).total_seconds() > GRACE_S:
            teller.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            retry(teller, teller.trials[t.number])


def _pending(study: optuna.Study, cfg: SweepConfig, teller: optuna.Study) -> bool:
    """Whether a worker should start another trial. While other workers run the last trials, it
    waits: one of them may die, and its trial, once stale, is queued again.
    """
    while True:
        optuna.storages.fail_stale_trials(study)  # queues the stale trials again
        fail_orphans(teller)
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return True
        if cfg.grid:
            touched = {t.system_attrs.get("grid_id") for t in trials} - {None}
            if len(touched) < cfg.total:
                return True
        else:  # a search space: each failure counts against n_trials, or it would never end
            started = sum(t.state in (TrialState.COMPLETE, TrialState.RUNNING) for t in trials)
            if started + len(failed_trials(trials)) < cfg.total:
                return True
        if not any(t.state == TrialState.RUNNING for t in trials):
            return False
        time.sleep(POLL_S)


def work(
    study: optuna.Study, cfg: SweepConfig, out: Path, quick: bool, url: str, callbacks=()
) -> None:
    """One worker: run trials until none is left to start."""
    teller = optuna.load_study(
        study_name=study.study_name,
        storage=open_storage(url),
        sampler=optuna.samplers.RandomSampler(),
    )
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
        os.environ["OMP_NUM_THREADS"] = str(cfg.threads)  # for fits in their own process
    objective = Objective(study, cfg, out, quick)

    def say_failed(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            failure = _failure(trial)
            where = f" (log: {out / failure.log})" if failure.log else ""
            tqdm.write(
                f"trial {trial.number} ({failure.point}) failed: {failure.reason}{where}",
                file=sys.stderr,
            )

    while _pending(study, cfg, teller):
        study.optimize(
            objective, n_trials=1, catch=(TrialError,), callbacks=[say_failed, *callbacks]
        )


def _show(bar, study: optuna.Study) -> None:
    """Progress: trials finished (complete or failed), and how many failed."""
    trials = study.get_trials(deepcopy=False)
    failed = len(failed_trials(trials))
    bar.n = sum(t.state == TrialState.COMPLETE for t in trials) + failed
    if failed:
        bar.set_postfix_str(f"{failed} failed", refresh=False)
    bar.refresh()


def run_sweep(
    cfg: SweepConfig,
    out: Path,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    quick: bool = False,
    worker: bool = False,
    progress: bool = True,
) -> optuna.Study:
    """Run (or finish) a sweep, then export its CSV, table and plots; returns the study."""
    verbosity = optuna.logging.get_verbosity()
    # a failed trial is reported in one line (and in results.md), not by Optuna's traceback
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            # heartbeats and stale-trial checks are experimental in Optuna; they are what we rely on
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            return _run_sweep(cfg, out, storage, study_name, workers, quick, worker, progress)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _run_sweep(
    cfg: SweepConfig,
    out: Path,
    storage: str | None,
    study_name: str | None,
    workers: int,
    quick: bool,
    worker: bool,
    progress: bool,
) -> optuna.Study:
    out = out.resolve()
    if not worker:
        check_overrides(cfg, out, quick)
    if storage is None:  # the default storage lives in the output folder
        out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{out / 'study.db'}"
    name = study_name or cfg.name + ("-quick" if quick else "")
    study = open_study(cfg, url, name, quick)
    out.mkdir(parents=True, exist_ok=True)
    if worker:
        work(study, cfg, out, quick, url)
        return study
    recover(study)
    bar = tqdm(total=cfg.total, desc=name, unit="trial", disable=not progress)
    _show(bar, study)
    if workers <= 1:

        def tick(study: optuna.Study, trial: FrozenTrial) -> None:
            _show(bar, study)

        work(study, cfg, out, quick, url, callbacks=[tick])
    else:
        cmd = [sys.executable, "-m", "symlight", "sweep", "--config", str(cfg.path)]
        cmd += ["--out", str(out), "--storage", url, "--study", name, "--worker"]
        cmd += ["--quick"] if quick else []
        procs = [subprocess.Popen(cmd) for _ in range(workers)]
        while any(p.poll() is None for p in procs):
            _show(bar, study)
            time.sleep(2)
        if any(p.returncode for p in procs):
            raise SystemExit(f"a sweep worker failed: exit codes {[p.returncode for p in procs]}")
    _show(bar, study)
    bar.close()
    export(study, cfg, out)
    return study


# -- results --------------------------------------------------------------------------------------
def export(study: optuna.Study, cfg: SweepConfig, out: Path) -> None:
    """Write ``trials.csv`` (Optuna's dataframe) and the sweep's record ``<name>.csv`` under
    ``out``, then from the record alone, as ``--report`` does, ``results.md`` and the plots.
    """
    frame = study.trials_dataframe()
    frame.to_csv(out / "trials.csv", index=False)
    failed = failed_trials(study.get_trials(deepcopy=False))
    failures = {t.number: _failure(t).reason for t in failed}
    write_record(sweep_record(frame, cfg, failures, out), cfg, out / f"{cfg.name}.csv")
    report(out / f"{cfg.name}.csv", out)


class SweepArgumentParser(argparse.ArgumentParser):
    """The sweep command's options; a mistake in them is a one-line :class:`UsageError`."""

    def error(self, message: str):
        raise UsageError(f"sweep: {message}")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m symlight sweep ...``; exits non-zero when a trial has failed."""
    parser = SweepArgumentParser(
        prog=f"{PROG} sweep", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    actions = [
        parser.add_argument("--config", "-c", help="sweep config: a file or a shipped name"),
        parser.add_argument(
            "--report",
            type=Path,
            metavar="RECORD.csv",
            help="rebuild results.md and the plots from a sweep's record alone, no fit and no "
            "storage (into --out, default: RECORD/ beside the file)",
        ),
        parser.add_argument(
            "--workers", type=int, default=1, help="worker processes on this machine"
        ),
        parser.add_argument("--storage", help="Optuna storage URL (default: sqlite in --out)"),
        parser.add_argument(
            "--out", type=Path, help="output folder (default: sweeps/<config name>)"
        ),
        parser.add_argument("--study", help="study name (default: the config name)"),
        parser.add_argument(
            "--quick", action="store_true", help="shrink every budget: a smoke run"
        ),
        parser.add_argument(
            "--no-run", action="store_true", help="only export the stored trials: CSV, table, plots"
        ),
        parser.add_argument("--no-progress", action="store_true", help="no progress bar"),
        parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS),
    ]
    known = [name for action in actions for name in action.option_strings] + ["--help", "-h"]
    for token in argv if argv is not None else sys.argv[1:]:
        name = token.split("=", 1)[0]
        if (name.startswith("--") or name[:1] == "-" and name[1:].isalpha()) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"sweep: unrecognized argument {name}{hint}")
    args = parser.parse_args(argv)
    if args.report:
        if args.config:
            raise UsageError("sweep: --report reads the config from the record; give no --config")
        _rebuild(args.report, args.out or args.report.with_suffix(""))
        return
    if not args.config:
        raise UsageError("sweep: give --config SWEEP to run it, or --report RECORD.csv")
    cfg = load_sweep(args.config)
    out = (args.out or Path("sweeps") / (cfg.name + ("-quick" if args.quick else ""))).resolve()
    name = args.study or cfg.name + ("-quick" if args.quick else "")
    if args.no_run:
        url = args.storage or f"sqlite:///{out / 'study.db'}"
        if not args.storage and not (out / "study.db").is_file():
            raise UsageError(f"sweep --no-run: no study in {out}; run the sweep first")
        try:
            study = optuna.load_study(study_name=name, storage=open_storage(url))
        except KeyError:
            raise UsageError(f"sweep --no-run: no study {name!r} in {shown(url)}") from None
        export(study, cfg, out)
    else:
        study = run_sweep(
            cfg,
            out,
            storage=args.storage,
            study_name=args.study,
            workers=args.workers,
            quick=args.quick,
            worker=args.worker,
            progress=not args.no_progress,
        )
        if args.worker:
            return
    _report(out, cfg)
    failed = failed_trials(study.get_trials(deepcopy=False))
    if failed:
        logs = [str(out / f.log) for f in (_failure(t) for t in failed) if f.log]
        where = ", ".join(logs) if len(logs) <= 3 else f"{out / 'runs'}/trial_*/fit.log"
        raise SystemExit(
            f"{PROG} sweep: {len(failed)} of {cfg.total} trials failed (reasons in "
            f"{out / 'results.md'}); logs: {where}"
        )


def _rebuild(record: Path, out: Path) -> None:
    """``--report``: the report of a record, and where its files are."""
    written = report(record, out)
    plots = ", ".join(p.name for p in written[1:])
    print(f"results: {written[0]}" + (f"\nplots: {out / 'plots'}/ ({plots})" if plots else ""))


def _report(out: Path, cfg: SweepConfig) -> None:
    """Print the results table (the paired differences and failures are in ``results.md``) and
    where the sweep's files are.
    """
    print((out / "results.md").read_text().split("\n## ")[0].strip())
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    print(f"\nresults: {out / 'results.md'}, {out / 'trials.csv'}")
    print(f"record (python -m symlight sweep --report): {out / (cfg.name + '.csv')}")
    if plots:
        print(f"plots: {out / 'plots'}/ ({', '.join(plots)})")
    print(f"runs (TensorBoard): tensorboard --logdir {out / 'runs'}")
