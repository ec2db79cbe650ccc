"""Fit time of a config with EquivarianceCheck on vs off, alternating in one run.

    python benchmarks/callback_overhead.py                      # configs/argmax.yaml, 3 pairs
    python benchmarks/callback_overhead.py --repeats 5 -- --trainer.max_epochs=2

Each repeat fits the config twice, once with ``--equivariance.enabled=true`` and once with
``false``, alternating which goes first (ABBA) so that slow drift of the machine cancels out.
Fits run in-process through ``symlight.cli.main`` in a scratch folder; the time is that of the
whole ``fit`` command (data, training, every validation run, checkpoints). Prints each pair and
the median ratio on/off.

On a shared or busy machine wall-clock times are noisy, so two more estimates are printed: the
ratio of the CPU time of this process (less sensitive to other jobs, best with ``--threads 1``),
and ``fit / (fit - hooks)`` from the wall time spent in the callback's own hooks during the "on"
fit, which does not depend on what the machine did between the two fits of a pair.
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

from symlight.callbacks import EquivarianceCheck
from symlight.cli import main

HOOKS = ("on_validation_batch_end", "on_validation_epoch_end")

QUIET = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


class _HookTimer:
    """Accumulates the wall time spent in EquivarianceCheck's hooks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        for name in HOOKS:
            original = getattr(EquivarianceCheck, name)

            def timed(callback, *args, _original=original, **kwargs):
                start = time.perf_counter()
                try:
                    return _original(callback, *args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - start

            setattr(EquivarianceCheck, name, timed)


def fit_seconds(
    config: str, enabled: bool, extra: list[str], timer: _HookTimer
) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process) of one ``fit``."""
    args = ["fit", "--config", config, f"--equivariance.enabled={str(enabled).lower()}"]
    timer.seconds = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    main(args + QUIET + extra)
    return time.perf_counter() - wall, time.process_time() - cpu


def run(config: str, repeats: int, extra: list[str]) -> list[dict[str, float]]:
    timer = _HookTimer()
    rows = []
    for i in range(repeats):
        order = (True, False) if i % 2 == 0 else (False, True)
        row = {}
        for enabled in order:
            arm = "on" if enabled else "off"
            row[arm], row[f"{arm}_cpu"] = fit_seconds(config, enabled, extra, timer)
            if enabled:
                row["hooks"] = timer.seconds
        row["ratio"] = row["on"] / row["off"]
        row["cpu_ratio"] = row["on_cpu"] / row["off_cpu"]
        row["hook_ratio"] = row["on"] / (row["on"] - row["hooks"])
        rows.append(row)
        print(
            f"repeat {i + 1}: wall on {row['on']:7.2f} s off {row['off']:7.2f} s "
            f"ratio {row['ratio']:.3f} | CPU on {row['on_cpu']:7.2f} s off {row['off_cpu']:7.2f} s "
            f"ratio {row['cpu_ratio']:.3f} | hooks {row['hooks']:.2f} s: ratio "
            f"{row['hook_ratio']:.3f}",
            flush=True,
        )
    return rows


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", default="argmax.yaml", help="config to fit (shipped name or path)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="pairs of fits (on, off)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("extra", nargs="*", help="extra CLI arguments after --, for both fits")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    os.chdir(tempfile.mkdtemp(prefix="symlight-overhead-"))
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"CUDA {'available' if torch.cuda.is_available() else 'absent'}"
    )
    rows = run(args.config, args.repeats, args.extra)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def spread(key: str) -> str:
        return f"min {min(r[key] for r in rows):.3f}, max {max(r[key] for r in rows):.3f}"

    print(f"median wall on {median('on'):.2f} s, off {median('off'):.2f} s")
    print(f"median wall-clock ratio {median('ratio'):.3f} ({spread('ratio')})")
    print(f"median CPU-time ratio   {median('cpu_ratio'):.3f} ({spread('cpu_ratio')})")
    print(f"median hook-time ratio  {median('hook_ratio'):.3f} ({spread('hook_ratio')})")
