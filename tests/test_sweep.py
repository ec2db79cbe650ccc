"""The sweep command: a quick grid, a killed and resumed sweep, two workers on one storage, and
the mistakes it reports: a bad override before any trial, a failed trial, a bad sweep config."""

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

from symlight.app.cli import UsageError
from symlight.app.main import main as symlight
from symlight.app.sweep import main as sweep
from symlight.app.sweep.config import load_sweep
from symlight.app.sweep.report import figure

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
    printed = capsys.readouterr()
    assert (
        "| max | 2 |" in printed.out and f"results: {out.resolve() / 'results.md'}" in printed.out
    )
    # the table and where the files are; the fits' own output stays in their logs
    assert len((printed.out + printed.err).splitlines()) < 20, printed.out + printed.err
    for chatter in ("LightningCLI's args", "log_every_n_steps", "run folder:", "Warning"):
        assert chatter not in printed.out + printed.err
    assert "run folder:" in (out / "runs" / "trial_0000" / "fit.log").read_text()
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


def error_line(capsys, argv: list[str]) -> str:
    """Run ``symlight ARGV``: a usage error, exit status 2, one line on stderr; returns the line."""
    with pytest.raises(SystemExit) as exit_info:
        symlight(argv)
    assert exit_info.value.code == 2
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symlight: error: "), printed.err
    assert not printed.out.strip(), printed.out
    return lines[0]


def test_a_bad_option_of_a_grid_point_stops_the_sweep_before_its_first_trial(tmp_path, capsys):
    path, out = tmp_path / "tiny.yaml", tmp_path / "out"
    path.write_text(
        TINY.format(seeds="0: {seed_everything: 0}").replace(
            "max: {model.init_args.net.init_args.pooling: max}",
            "max: {model.init_args.net.init_args.poolng: max}",
        )
    )
    line = error_line(capsys, ["sweep", "--config", str(path), "--quick", "--out", str(out)])
    assert (
        "grid point net=max, seed=0" in line and "poolng" in line and "did you mean pooling" in line
    )
    assert not out.exists(), "no sweep folder for a sweep that cannot start"
    # an option valid alone but not with another axis's choice: the grid point is named
    path.write_text(
        "base: argmax.yaml\n"
        "grid:\n"
        "  net: {deepsets: {model.init_args.net: models/deepsets.yaml},\n"
        "        pairwise: {model.init_args.net: models/pairwise.yaml}}\n"
        "  depth: {'2': {model.init_args.net.init_args.depth: 2}}\n"
    )
    line = error_line(capsys, ["sweep", "--config", str(path), "--out", str(out)])
    assert "grid point net=pairwise, depth=2" in line and "PairwiseNet" in line
    # every value of a search space is checked too
    path.write_text(
        "base: argmax.yaml\nn_trials: 2\n"
        "space: {model.init_args.net.init_args.hidden: {choices: [8, wide]}}\n"
    )
    line = error_line(capsys, ["sweep", "--config", str(path), "--out", str(out)])
    assert "search space model.init_args.net.init_args.hidden=wide" in line
    assert not out.exists()


def test_accuracy_plots_stay_within_zero_and_one(tmp_path):
    cfg = load_sweep(str(config(tmp_path, 2)))
    frame = pd.DataFrame(  # a sweep's record (symlight.app.sweep.record)
        {
            "grid/net": ["max", "max", "mean", "mean"],
            "grid/seed": ["0", "1", "0", "1"],
            "val/acc": [0.0, 1.0, 0.9, 1.0],  # std 0.7: error bars past 0 and 1
            "val/acc@n=20": [0.0, 1.0, 0.5, 0.7],
            "val/loss": [0.1, 2.5, 0.4, 0.3],
            "params": [100, 100, 120, 120],
        }
    )
    for spec in (
        {"kind": "bar", "metric": "val/acc", "group": "net"},
        {"kind": "size", "metric": "val/acc", "group": "net"},
        {"kind": "params", "metric": "val/acc", "group": "net"},
    ):
        fig = figure(frame, cfg, spec)
        assert fig.axes[0].get_ylim() == (0.0, 1.0), spec
    fig = figure(frame, cfg, {"kind": "bar", "metric": "val/loss", "group": "net"})
    assert fig.axes[0].get_ylim()[1] > 2.5, "a metric past 1 keeps its own range"
    small = frame.assign(**{"val/mae": [0.01, 0.02, 0.07, 0.08]})
    fig = figure(small, cfg, {"kind": "bar", "metric": "val/mae", "group": "net"})
    low, high = fig.axes[0].get_ylim()
    assert low == 0 and 0.08 < high < 0.2, "a small error is not squashed into [0, 1]"


def test_bad_sweep_configs_fail_with_one_clear_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "base: argmax.yaml\ngrid: {a: {x: [--seed_everything=1]}}\nspace: {b: {low: 1, high: 2}}\n"
    )
    with pytest.raises(SystemExit, match="exactly one of 'grid'"):
        load_sweep(str(path))
    path.write_text("base: argmax.yaml\ngrids: {}\n")
    with pytest.raises(SystemExit, match="unknown keys"):
        load_sweep(str(path))
    with pytest.raises(UsageError, match="shipped sweeps: .*argmax_targets.yaml"):
        load_sweep("no_such_sweep")
    path.write_text("base: argmax.yaml\ngrid: {net: {max: pooling=max}}\n")
    with pytest.raises(UsageError, match="grid option net=max is 'pooling=max'"):
        load_sweep(str(path))
    path.write_text(
        "base: argmax.yaml\ngrid: {net: {a: {}}}\nplots: [{kind: bar, metric: m, group: nett}]\n"
    )
    with pytest.raises(UsageError, match="names axis 'nett'; the grid's axes: net"):
        load_sweep(str(path))
    path.write_text("base: argmax.yaml\ngrid: {net: [a\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_sweep(str(path))
    assert load_sweep("argmax_targets").total == 6 * 4 * 2 * 5
    assert load_sweep("sweeps/argmax_width.yaml").total == 2 * 2 * 2 * 5
    # the bandit and anomaly sweeps are configs over their tasks' documented keys
    assert load_sweep("bandit").objective == "val/regret@k=10,n=100"
    assert load_sweep("anomaly.yaml").base == "anomaly.yaml" and load_sweep("anomaly").total == 4 * 2 * 5
    # on the command line: one line and exit status 2, as every usage error
    path.write_text("base: argmax.yaml\ngrids: {}\n")
    assert "unknown keys ['grids']" in error_line(capsys, ["sweep", "--config", str(path)])
    assert "not found; shipped sweeps" in error_line(capsys, ["sweep", "--config", "no_such"])
    line = error_line(capsys, ["sweep", "--confg", "argmax_targets"])
    assert line.endswith("sweep: unrecognized argument --confg (did you mean --config?)")


def test_a_failing_fit_fails_its_trial_only_and_a_rerun_retries_it(tmp_path, capsys):
    path, out = tmp_path / "tiny.yaml", tmp_path / "out"
    text = TINY.format(seeds="0: {seed_everything: 0}").replace(
        "mean: {model.init_args.net.init_args.pooling: mean}",
        "inverted: {data.init_args.n_min: 5, data.init_args.n_max: 2}",
    )
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_info:  # n_min > n_max: the task refuses it
        sweep(["--config", str(path), "--quick", "--out", str(out), "--no-progress"])
    frame = pd.read_csv(out / "trials.csv")
    assert sorted(zip(frame["params_net"], frame["state"])) == [
        ("inverted", "FAIL"),
        ("max", "COMPLETE"),
    ]
    number = int(frame[frame["state"] == "FAIL"]["number"].iloc[0])
    log = out.resolve() / "runs" / f"trial_{number:04d}" / "fit.log"
    assert str(exit_info.value) == (
        f"symlight sweep: 1 of 2 trials failed (reasons in {out.resolve() / 'results.md'}); "
        f"logs: {log}"
    )
    printed = capsys.readouterr()
    reason = "need 1 <= n_min <= n_max, got n_min=5, n_max=2"
    assert frame[frame["state"] == "FAIL"]["user_attrs_error"].iloc[0] == reason
    assert (
        printed.err.strip()
        == f"trial {number} (net=inverted, seed=0) failed: {reason} (log: {log})"
    )
    assert "Traceback" not in printed.out and "Traceback" in log.read_text()
    table = (out / "results.md").read_text()
    assert "| max | 1 |" in table and "1 complete trials of 2; 1 failed (listed below)." in table
    run = f"runs/trial_{number:04d}/fit.log"
    assert f"- trial {number} (net=inverted, seed=0): {reason} (log: `{run}`)" in table
    with pytest.raises(SystemExit, match="1 of 2 trials failed"):
        sweep(["--config", str(path), "--quick", "--out", str(out), "--no-progress"])
    frame = pd.read_csv(out / "trials.csv")
    assert sorted(zip(frame["params_net"], frame["state"])) == [
        ("inverted", "FAIL"),
        ("inverted", "FAIL"),
        ("max", "COMPLETE"),
    ], "a re-run retries the failed point once, and never the finished one"
    table = (out / "results.md").read_text()
    assert "- trial 2 (net=inverted, seed=0)" in table and f"- trial {number} " not in table
    with pytest.raises(SystemExit, match="1 of 2 trials failed"):  # --no-run says so too
        sweep(["--config", str(path), "--quick", "--out", str(out), "--no-run"])


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_queued_again(
    tmp_path, monkeypatch
):
    from symlight.app.sweep import study as sweep_study

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=sweep_study.open_storage(url))
    orphan = study.ask()  # running, never marked by a worker: its process died at once
    alive = study.ask()
    alive.set_user_attr("worker", "host:1")
    teller = optuna.load_study(study_name="s", storage=url, sampler=optuna.samplers.RandomSampler())
    sweep_study.fail_orphans(teller)  # within the grace period: left alone
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 2
    monkeypatch.setattr(sweep_study, "GRACE_S", 0)
    sweep_study.fail_orphans(teller)
    found = study.get_trials()
    assert [t.state for t in found] == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert found[orphan.number].state == TrialState.FAIL
    assert found[alive.number].state == TrialState.RUNNING
    assert found[2].system_attrs["failed_trial"] == orphan.number
