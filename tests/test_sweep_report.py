"""A sweep's report rebuilt from its record alone (``python -m symlight sweep --report``): the
paired intervals against a hand computation, "no difference found" where an interval contains 0,
comparisons per budget and against a baseline, byte-for-byte reproducible output, and the record
written from an Optuna study's dataframe."""

import math
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from symlight.app.main import main as symlight
from symlight.app.sweep import main as sweep
from symlight.app.sweep.config import parse_sweep
from symlight.app.sweep.paired import NO_DIFFERENCE, interval
from symlight.app.sweep.record import read_record, sweep_record, write_record
from symlight.app.sweep.report import results_table

CONFIG = """\
base: argmax.yaml
objective: val/acc
metrics: [val/acc]
compare: [net]
baselines: [nothing]
grid:
  net:
    wide: {model.init_args.net.init_args.hidden: 64}
    narrow: {model.init_args.net.init_args.hidden: 8}
  budget:
    '100': {data.init_args.batches_per_epoch: 50}
    '1000': {data.init_args.batches_per_epoch: 500}
  seed: {0: {seed_everything: 0}, 1: {seed_everything: 1}, 2: {seed_everything: 2}}
plots:
  - {kind: bar, metric: val/acc, group: net, hue: budget, name: acc}
  - {kind: curve, metric: train/acc, group: net, facet: budget, name: curves}
"""

# val/acc by (net, budget, seed); the baseline "nothing" depends on the seed's data only
ACC = {
    ("wide", "100"): [0.62, 0.70, 0.55],
    ("narrow", "100"): [0.60, 0.52, 0.58],  # wide - narrow: +0.02, +0.18, -0.03: contains 0
    ("wide", "1000"): [0.91, 0.95, 0.90],
    ("narrow", "1000"): [0.80, 0.84, None],  # seed 2 failed: two pairs, +0.11 and +0.11
}
NOTHING = [0.30, 0.25, 0.35]


def write_fixed_record(path: Path) -> None:
    """A record as the sweep writes it: its header (the config) and one row per trial."""
    lines = ["# symlight sweep widths", *(f"# {line}".rstrip() for line in CONFIG.splitlines())]
    lines.append(
        "trial,state,grid/net,grid/budget,grid/seed,params,steps,seconds,val/acc,val/acc_nothing,"
        "run,error,curve/train/acc"
    )
    trial = 0
    for (net, budget), values in ACC.items():
        for seed, acc in enumerate(values):
            run = f"runs/trial_{trial:04d}"
            if acc is None:
                lines.append(f"{trial},FAIL,{net},{budget},{seed},,,,,,{run},out of memory,")
            else:
                steps, params = int(budget), 1000 if net == "wide" else 100
                curve = f"{steps // 2}:{acc / 2!r} {steps}:{acc!r}"
                lines.append(
                    f"{trial},COMPLETE,{net},{budget},{seed},{params},{steps},1.5,{acc!r},"
                    f"{NOTHING[seed]!r},{run},,{curve}"
                )
            trial += 1
    path.write_text("\n".join(lines) + "\n")


def hand_interval(differences: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences, computed the textbook way."""
    n = len(differences)
    mean = statistics.mean(differences)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(differences) / math.sqrt(n)
    return mean, mean - half, mean + half


def row(table: str, *cells: str) -> list[str]:
    """The cells of the one table row that starts with ``cells``."""
    start = "| " + " | ".join(cells) + " |"
    found = [line for line in table.splitlines() if line.startswith(start)]
    assert len(found) == 1, (start, table)
    return [cell.strip() for cell in found[0].strip("|").split("|")]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("report")
    write_fixed_record(folder / "widths.csv")
    sweep(["--report", str(folder / "widths.csv"), "--out", str(folder / "one")])
    return folder, (folder / "one" / "results.md").read_text()


def test_interval_is_the_t_interval_of_the_paired_differences():
    differences = [0.02, 0.18, -0.03]
    found = interval(differences)
    mean, low, high = hand_interval(differences)
    assert found.n == 3 and found.mean == pytest.approx(mean, abs=1e-12)
    assert (found.low, found.high) == (pytest.approx(low), pytest.approx(high))
    assert found.contains_zero and not interval([0.1, 0.12, 0.11]).contains_zero
    one = interval([0.4])
    assert one.n == 1 and math.isnan(one.low) and not one.contains_zero


def test_report_pairs_options_by_seed_per_budget(report):
    _, table = report
    assert "| wide | 100 | 3 | 0.623 ± 0.075 | 0.300 ± 0.050 | 1000 ± 0 | 100 ± 0 |" in table
    assert "| narrow | 1000 | 2 | 0.820 ± 0.028 |" in table  # its failed seed is left out
    # budget 100: the three paired differences wide - narrow, and an interval that contains 0
    mean, low, high = hand_interval([0.62 - 0.60, 0.70 - 0.52, 0.55 - 0.58])
    assert low < 0 < high
    assert row(table, "100", "wide", "narrow") == [
        "100", "wide", "narrow", "3", f"{mean:+.3f}", f"[{low:+.3f}, {high:+.3f}]", NO_DIFFERENCE
    ]  # fmt: skip
    # budget 1000: two seeds (seed 2 failed for narrow), both +0.11: an interval without 0
    cells = row(table, "1000", "wide", "narrow")
    assert cells[3:6] == ["2", "+0.110", "[+0.110, +0.110]"]
    assert cells[6] == "wide higher than narrow"
    # the baseline, paired with each network on the same seed's data
    mean, low, high = hand_interval([a - b for a, b in zip(ACC["narrow", "100"], NOTHING)])
    cells = row(table, "narrow", "100", "nothing")
    assert cells[3:] == [
        "3",
        f"{mean:+.3f}",
        f"[{low:+.3f}, {high:+.3f}]",
        "network higher than nothing",
    ]
    assert "### val/acc: budget A − budget B" not in table, "compare: [net] only"
    assert "- trial 11 (net=narrow, budget=1000, seed=2): out of memory" in table


def test_report_is_reproducible_byte_for_byte(report):
    folder, table = report
    sweep(["--report", str(folder / "widths.csv"), "--out", str(folder / "two")])
    assert (folder / "two" / "results.md").read_text() == table
    plots = sorted(p.name for p in (folder / "one" / "plots").glob("*.png"))
    assert plots == ["acc.png", "curves.png"]
    for name in plots:
        assert (folder / "one" / "plots" / name).read_bytes() == (
            folder / "two" / "plots" / name
        ).read_bytes()


def test_the_record_of_a_study_reads_back_exactly(tmp_path):
    cfg = parse_sweep(CONFIG, tmp_path / "w.yaml")
    frame = pd.DataFrame(  # as Optuna's trials_dataframe(): the retried point's failure included
        {
            "number": [0, 1, 2, 3],
            "state": ["COMPLETE", "FAIL", "FAIL", "COMPLETE"],
            "value": [0.1 + 0.2, None, None, 2 / 3],
            "params_net": ["wide", "narrow", "narrow", "narrow"],
            "params_budget": ["100", "100", "1000", "100"],
            "params_seed": ["0", "0", "0", "0"],
            "user_attrs_val/acc": [0.1 + 0.2, None, None, 2 / 3],
            "user_attrs_params": [1000, None, None, 100],
            "user_attrs_worker": ["host:1", "host:2", "host:2", "host:1"],
            "user_attrs_run": ["runs/trial_0000", "runs/trial_0001", None, "runs/trial_0003"],
            "user_attrs_error": [None, "killed", None, None],
        }
    )
    record = sweep_record(frame, cfg, {2: "no heartbeat"}, tmp_path)
    assert record["trial"].tolist() == [0, 2, 3], "trial 1 failed, then its point completed"
    assert record["error"].tolist()[1] == "no heartbeat" and "worker" not in record
    write_record(record, cfg, tmp_path / "w.csv")
    read_cfg, read = read_record(tmp_path / "w.csv")
    assert read_cfg.name == "w" and read_cfg.grid == cfg.grid and read_cfg.baselines == ["nothing"]
    assert read["val/acc"].tolist()[0] == 0.1 + 0.2 and read["val/acc"].tolist()[2] == 2 / 3
    assert read["grid/budget"].tolist() == ["100", "1000", "100"]
    assert read["curve/train/acc"].isna().all(), "no run folder: no curve"


def test_report_of_a_missing_file_is_one_line_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "symlight", "sweep", "--report", "missing.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and not done.stdout, done
    assert done.stderr == "symlight: error: sweep --report: no such file missing.csv\n"


def test_report_of_a_csv_that_is_not_a_record_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "plain.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit) as exit_info:
        symlight(["sweep", "--report", str(tmp_path / "plain.csv")])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symlight: error: sweep --report: ")
    assert "plain.csv is not a sweep record" in lines[0]


@pytest.mark.parametrize(
    "record",
    sorted((Path(__file__).resolve().parents[1] / "docs" / "heuristics").glob("*.csv")),
    ids=lambda path: path.stem,
)
def test_committed_heuristics_tables_are_what_their_records_give(record):
    cfg, trials = read_record(record)
    committed = record.with_suffix("") / "results.md"
    assert committed.read_text() == results_table(trials, cfg)
