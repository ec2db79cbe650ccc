"""The sweep command: a quick grid, a killed and resumed sweep, two workers on one storage."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from symlight.app.sweep import main as sweep
from symlight.app.sweep.config import load_sweep

TINY = """
base: argmax.yaml
args: {{data.init_args.val_sets: 8, data.init_args.val_sizes: [20], data.init_args.batch_size: 16,
        model.init_args.net.init_args.hidden: 8}}
objective: val/acc
metrics: [val/acc, val/acc@n=20]
in_process: true
grid:
  net:
    max: {{model.init_args.net.init_args.pooling: max}}
    mean: {{model.init_args.net.init_args.pooling: mean}}
  seed: {{{seeds}}}
quick: {{data.init_args.batches_per_epoch: 2}}
plots:
  - {{kind: size, metric: val/acc, group: net}}
  - {{kind: curve, metric: val/acc, group: net}}
"""


def config(tmp_path: Path, seeds: int) -> Path:
    path = tmp_path / "tiny.yaml"
    options = ", ".join(f"{s}: {{seed_everything: {s}}}" for s in range(seeds))
    path.write_text(TINY.format(seeds=options))
    return path


def trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="tiny-quick", storage=f"sqlite:///{out / 'study.db'}")
    return study.get_trials(deepcopy=False)


def points(found) -> list[int]:
    return sorted(t.system_attrs["grid_id"] for t in found if t.state == TrialState.COMPLETE)


def completed_count(out: Path) -> int:
    """Complete trials, read with plain sqlite3 so the poll never races the sweep creating tables."""
    try:
        with sqlite3.connect(out / "study.db", timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # no database or no tables yet
        return 0


def runs(out: Path) -> set[str]:
    return {p.name for p in (out / "runs").glob("trial_*")} if (out / "runs").exists() else set()


def test_quick_sweep_writes_one_csv_row_per_trial_a_table_and_plots(tmp_path, capsys):
    out = tmp_path / "out"
    sweep(["--config", str(config(tmp_path, 2)), "--quick", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out  # the table, and where the files are
    assert "| max | 2 |" in printed and f"results: {out.resolve() / 'results.md'}" in printed
    frame = pd.read_csv(out / "trials.csv")
    assert len(frame) == 4 and set(frame["state"]) == {"COMPLETE"}
    assert sorted(zip(frame["params_net"], frame["params_seed"])) == [
        ("max", 0),
        ("max", 1),
        ("mean", 0),
        ("mean", 1),
    ]
    assert (
        frame["user_attrs_params"].gt(0).all()
        and frame["user_attrs_val/acc@n=20"].between(0, 1).all()
    )
    assert (frame["value"] == frame["user_attrs_val/acc"]).all()
    assert len(runs(out)) == 4
    table = (out / "results.md").read_text()
    assert "| net | seeds | val/acc | val/acc@n=20 |" in table and "| max | 2 |" in table
    assert {p.name for p in (out / "plots").glob("*.png")} == {
        "size_val_acc_net.png",
        "curve_val_acc_net.png",
    }
    # a second run finds nothing left to do
    sweep(["--config", str(config(tmp_path, 2)), "--quick", "--out", str(out), "--no-progress"])
    assert len(pd.read_csv(out / "trials.csv")) == 4 and len(runs(out)) == 4


def test_a_killed_sweep_resumes_with_the_unfinished_trials_only(tmp_path):
    out, cfg = tmp_path / "out", config(tmp_path, 3)
    cmd = [sys.executable, "-m", "symlight", "sweep", "--config", str(cfg), "--quick"]
    cmd += ["--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if completed_count(out):
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = trials(out)
    done_before = points(before)
    assert 1 <= len(done_before) < 6, "kill the sweep after its first trial"
    started_before = runs(out)

    sweep(["--config", str(cfg), "--quick", "--out", str(out), "--no-progress"])
    after = trials(out)
    assert points(after) == list(range(6)), "every grid point completes exactly once"
    assert len(runs(out) - started_before) == 6 - len(done_before), "only unfinished points re-run"
    for t in before:
        if t.state == TrialState.COMPLETE:
            assert after[t.number].state == TrialState.COMPLETE
        if t.state == TrialState.RUNNING:  # left behind by the killed process: failed, then re-run
            assert after[t.number].state == TrialState.FAIL


def test_two_workers_on_one_storage_run_disjoint_trials(tmp_path):
    out, cfg = tmp_path / "out", config(tmp_path, 3)
    sweep(["--config", str(cfg), "--quick", "--out", str(out), "--no-progress", "--workers", "2"])
    found = trials(out)
    assert points(found) == list(range(6))
    # a worker that draws a point the other is running prunes it before fitting: no run twice
    ran = [t for t in found if t.state != TrialState.PRUNED]
    assert len(ran) == 6, "no grid point fitted twice"
    assert len(runs(out)) == 6
    workers = {t.user_attrs["worker"] for t in found}
    assert len(workers) == 2, f"both workers ran trials: {workers}"


def test_bad_sweep_configs_fail_with_one_clear_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "base: argmax.yaml\ngrid: {a: {x: [--seed_everything=1]}}\nspace: {b: {low: 1, high: 2}}\n"
    )
    with pytest.raises(SystemExit, match="exactly one of 'grid'"):
        load_sweep(str(path))
    path.write_text("base: argmax.yaml\ngrids: {}\n")
    with pytest.raises(SystemExit, match="unknown keys"):
        load_sweep(str(path))
    with pytest.raises(SystemExit, match="shipped sweeps: .*argmax_targets.yaml"):
        load_sweep("no_such_sweep")
    assert load_sweep("argmax_targets").total == 6 * 4 * 3
    assert load_sweep("sweeps/argmax_width.yaml").total == 2 * 2 * 2 * 3
    # the bandit and anomaly sweeps are configs over their tasks' documented keys
    assert load_sweep("bandit").objective == "val/regret@k=10,n=100"
    assert load_sweep("anomaly.yaml").base == "anomaly.yaml" and load_sweep("anomaly").total == 12


def test_a_failing_fit_fails_its_trial_only_and_a_rerun_retries_it(tmp_path):
    path, out = tmp_path / "tiny.yaml", tmp_path / "out"
    text = TINY.format(seeds="0: {seed_everything: 0}").replace(
        "mean: {model.init_args.net.init_args.pooling: mean}",
        "median: {model.init_args.net.init_args.pooling: median}",
    )
    path.write_text(text)
    sweep(["--config", str(path), "--quick", "--out", str(out), "--no-progress"])
    frame = pd.read_csv(out / "trials.csv")
    assert sorted(zip(frame["params_net"], frame["state"])) == [
        ("max", "COMPLETE"),
        ("median", "FAIL"),
    ]
    assert "median" in frame[frame["state"] == "FAIL"]["user_attrs_error"].iloc[0]
    assert "| max | 1 |" in (out / "results.md").read_text()
    sweep(["--config", str(path), "--quick", "--out", str(out), "--no-progress"])
    frame = pd.read_csv(out / "trials.csv")
    assert sorted(zip(frame["params_net"], frame["state"])) == [
        ("max", "COMPLETE"),
        ("median", "FAIL"),
        ("median", "FAIL"),
    ], "a re-run retries the failed point once, and never the finished one"
