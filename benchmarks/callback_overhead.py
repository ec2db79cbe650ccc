"""Fit time of a config with EquivarianceCheck on vs off, alternating in one run.

    python benchmarks/callback_overhead.py                      # configs/argmax.yaml, 3 pairs
    python benchmarks/callback_overhead.py --repeats 5 -- --trainer.max_epochs=2

Each repeat fits the config twice, once with ``--equivariance.enabled=true`` and once with
``false``, alternating which goes first (ABBA) so that slow drift of the machine cancels out.
Fits run in-process through ``symlight.cli.main`` in a scratch folder; the time is that of the
whole ``fit`` command (data, training, every validation run, checkpoints). Prints each pair and
the median ratio on/off.

On a shared or busy machine end-to-end times are noisy, so the "on" fits also time the callback's
own hooks: ``fit / (fit - hooks)`` is a second estimate of the ratio that does not depend on what
else the machine was doing between the two fits of a pair.
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


def fit_seconds(config: str, enabled: bool, extra: list[str], timer: _HookTimer) -> float:
    args = ["fit", "--config", config, f"--equivariance.enabled={str(enabled).lower()}"]
    timer.seconds = 0.0
    start = time.perf_counter()
    main(args + QUIET + extra)
    return time.perf_counter() - start


def run(config: str, repeats: int, extra: list[str]) -> list[tuple[float, float, float]]:
    timer = _HookTimer()
    rows = []
    for i in range(repeats):
        order = (True, False) if i % 2 == 0 else (False, True)
        seconds, hooks = {}, 0.0
        for enabled in order:
            seconds[enabled] = fit_seconds(config, enabled, extra, timer)
            if enabled:
                hooks = timer.seconds
        on, off = seconds[True], seconds[False]
        rows.append((on, off, hooks))
        print(
            f"repeat {i + 1}: on {on:7.2f} s  off {off:7.2f} s  ratio {on / off:.3f}  "
            f"(hooks {hooks:.2f} s of the on fit: ratio {on / (on - hooks):.3f})",
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
    ratios = [on / off for on, off, _ in rows]
    hook_ratios = [on / (on - hooks) for on, _, hooks in rows]
    print(
        f"median on {statistics.median(r[0] for r in rows):.2f} s, "
        f"off {statistics.median(r[1] for r in rows):.2f} s, "
        f"median ratio {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}); "
        f"from hook time: median {statistics.median(hook_ratios):.3f} "
        f"(max {max(hook_ratios):.3f})"
    )
