"""The times README.md and docs/ quote, measured: each command run as a user runs it.

Each command runs in a fresh process in a scratch folder (``_runs.fit``), one after the other, so
the machine should be otherwise idle. Prints a markdown table with the date and the machine; the
figures go into README.md, docs/ and benchmarks/RESULTS.md.

    python benchmarks/doc_times.py                    # the fits README's "Using it" lists
    python benchmarks/doc_times.py --bandit --tests   # also the bandit fit and the test suite
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from _runs import fit, machine

COMMANDS = {
    "fit --config argmax.yaml": ["--config", "argmax.yaml"],
    "fit --config argmax.yaml, target rank, 10 epochs": [
        "--config",
        "argmax.yaml",
        "--data.init_args.target",
        "rank",
        "--trainer.max_epochs",
        "10",
    ],
    "fit --config argmax.yaml, pairwise net, val_sizes [100]": [
        "--config",
        "argmax.yaml",
        "--model.init_args.net",
        "models/pairwise.yaml",
        "--data.init_args.val_sizes",
        "[100]",
    ],
    "fit --config max_regression.yaml": ["--config", "max_regression.yaml"],
    "fit --config ring.yaml": ["--config", "ring.yaml"],
    "fit --config anomaly.yaml": ["--config", "anomaly.yaml"],
    "fit --config assignment.yaml": ["--config", "assignment.yaml"],
}
BANDIT = {"fit --config bandit.yaml": ["--config", "bandit.yaml"]}


def test_suite() -> float:
    """Seconds of ``python -m pytest`` (the README's test command) in the repository."""
    root = Path(__file__).resolve().parent.parent
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    print(result.stdout.strip().splitlines()[-1], file=sys.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"the test suite failed:\n{result.stdout[-4000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bandit", action="store_true", help="also time the bandit fit")
    parser.add_argument("--tests", action="store_true", help="also time python -m pytest")
    parser.add_argument("--only", nargs="*", help="time only the commands containing these words")
    args = parser.parse_args()
    commands = {**COMMANDS, **(BANDIT if args.bandit else {})}
    if args.only:
        commands = {k: v for k, v in commands.items() if any(w in k for w in args.only)}
    rows = []
    for name, argv in commands.items():
        seconds, _ = fit(argv)
        rows.append((f"`python -m symlight {name}`", seconds))
        print(f"{name}: {seconds:.0f} s", file=sys.stderr)
    if args.tests:
        rows.append(("`python -m pytest`", test_suite()))
    print(f"{date.today()}, {machine()}\n")
    print("| command | seconds | minutes |\n|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.0f} | {seconds / 60:.1f} |")


if __name__ == "__main__":
    main()
