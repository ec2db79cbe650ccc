"""Fit time of a config with EquivarianceCheck on vs off, alternating in one run.

    python benchmarks/callback_overhead.py                      # configs/argmax.yaml, 3 pairs
    python benchmarks/callback_overhead.py --repeats 5 -- --trainer.max_epochs=2

Each repeat fits the config twice, once with ``--equivariance.enabled=true`` and once with
``false``, alternating which goes first (ABBA) so that slow drift of the machine cancels out.
Fits run in-process through ``symlight.cli.main`` in a scratch folder; the time is that of the
whole ``fit`` command (data, training, every validation run, checkpoints). Prints each pair and
the median ratio on/off.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from datetime import datetime, timezone

import torch

from symlight.cli import main

QUIET = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def fit_seconds(config: str, enabled: bool, extra: list[str]) -> float:
    args = ["fit", "--config", config, f"--equivariance.enabled={str(enabled).lower()}"]
    start = time.perf_counter()
    main(args + QUIET + extra)
    return time.perf_counter() - start


def run(config: str, repeats: int, extra: list[str]) -> list[tuple[float, float]]:
    pairs = []
    for i in range(repeats):
        order = (True, False) if i % 2 == 0 else (False, True)
        seconds = {enabled: fit_seconds(config, enabled, extra) for enabled in order}
        pairs.append((seconds[True], seconds[False]))
        on, off = pairs[-1]
        print(f"repeat {i + 1}: on {on:7.2f} s  off {off:7.2f} s  ratio {on / off:.3f}", flush=True)
    return pairs


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", default="argmax.yaml", help="config to fit (shipped name or path)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="pairs of fits (on, off)")
    parser.add_argument("extra", nargs="*", help="extra CLI arguments after --, for both fits")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    warnings.filterwarnings("ignore")
    os.chdir(tempfile.mkdtemp(prefix="symlight-overhead-"))
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"CUDA {'available' if torch.cuda.is_available() else 'absent'}"
    )
    pairs = run(args.config, args.repeats, args.extra)
    ratios = [on / off for on, off in pairs]
    print(
        f"median on {statistics.median(p[0] for p in pairs):.2f} s, "
        f"off {statistics.median(p[1] for p in pairs):.2f} s, "
        f"median ratio {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )
