"""What Lightning and symlight cost over a plain PyTorch loop, on the max-regression config.

    python benchmarks/overhead.py                   # 20,000 steps, 1 pair (about 4 minutes)
    python benchmarks/overhead.py --steps 2000 --repeats 3
    python benchmarks/overhead.py --whole-process --repeats 2   # the commands as users run them

``--whole-process`` times the two commands as a user runs them, each a process of its own with
torch's default threads, start-up included: ``python -m symlight fit --config
max_regression.yaml`` in a scratch folder against ``python benchmarks/plain_max_regression.py``,
a minimal plain-PyTorch loop of the same protocol (same network, sampler, optimiser, schedule and
steps; it evaluates once at the end where the fit validates every 1000 steps). Without it:

Both sides train ``configs/max_regression.yaml``'s network (DeepSets, max pooling, 3 layers of 64)
on the same batches (the task's own sampler, same seeds), with AdamW and the one-cycle schedule
over the same number of steps, and both evaluate the 1000 fixed validation sets after every epoch
of 1000 steps. The symlight side is the real command, ``python -m symlight fit --config
max_regression.yaml --trainer.max_steps N``, run in-process through ``symlight.cli.main`` in a
scratch folder, with everything the user sees: the progress bar (written to a file here), the
TensorBoard curves, checkpoints and the equivariance check. The plain side is the loop below.
Both run in this process, with the same torch threads (``--threads 1`` keeps a shared machine's
load from turning thread synchronisation into the bottleneck). Pairs alternate which side goes first (ABBA), so that drift of a shared machine cancels out; the
ratio symlight / plain is printed per pair and as a median, of wall time and of this process's
CPU time (less sensitive to other jobs on the machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from symlight.cli import main
from symlight.core.seeding import stream_seed
from symlight.models import DeepSets
from symlight.tasks import ArgmaxDataModule

DATA = {"target": "max", "n_min": 1, "n_max": 10, "low": 0.0, "high": 100.0, "val_sizes": []}
EPOCH = 1000  # batches per epoch in configs/max_regression.yaml


def plain(steps: int) -> float:
    """The plain loop; returns the validation MAE of the final weights (for a sanity check)."""
    torch.manual_seed(0)
    task = ArgmaxDataModule(**DATA, batches_per_epoch=EPOCH)
    net = DeepSets(1, 1, out_order=0, hidden=64, depth=3, pooling="max")
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps)
    val = task._evaluation_sets(salt=0)[0]
    mae = float("nan")
    step, epoch = 0, 0
    while step < steps:
        gen = torch.Generator().manual_seed(stream_seed(task.seed, 1 + 64 * epoch))
        net.train()
        for _ in range(min(EPOCH, steps - step)):
            batch = task.sampler.batch(task.batch_size, task.n_min, task.n_max, gen)
            out = net(batch["x"], mask=batch["mask"])
            loss = F.l1_loss(out.squeeze(-1), batch["y"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
        epoch += 1
        net.eval()
        with torch.no_grad():
            errors = [(net(b["x"], mask=b["mask"]).squeeze(-1) - b["y"]).abs().sum() for b in val]
        mae = float(sum(errors)) / task.val_sets
    return mae


def symlight(steps: int, folder: str) -> float:
    """``python -m symlight fit --config max_regression.yaml`` in ``folder``; the last val/mae."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with open("progress.txt", "w") as bar, contextlib.redirect_stdout(bar):
            cli = main(["fit", "--config", "max_regression.yaml", f"--trainer.max_steps={steps}"])
    finally:
        os.chdir(cwd)
    return float(cli.trainer.callback_metrics["val/mae"])


def timed(fn, *args) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, fn's value)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, value


def whole_process(steps: int, repeats: int) -> None:
    """Both commands as processes of their own, in ABBA order; prints a table and the median."""
    plain_script = Path(__file__).with_name("plain_max_regression.py")
    commands = {
        "symlight": [
            sys.executable,
            "-m",
            "symlight",
            "fit",
            "--config",
            "max_regression.yaml",
            f"--trainer.max_steps={steps}",
        ],
        "plain": [sys.executable, str(plain_script), str(steps)],
    }
    print("| pair | symlight fit (s) | plain script (s) | ratio |")
    print("|---|---:|---:|---:|")
    ratios = []
    for pair in range(repeats):
        seconds = {}
        order = ("symlight", "plain") if pair % 2 == 0 else ("plain", "symlight")
        for side in order:
            with tempfile.TemporaryDirectory(prefix="symlight-overhead-") as folder:
                start = time.perf_counter()
                subprocess.run(
                    commands[side],
                    cwd=folder,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                seconds[side] = time.perf_counter() - start
        ratios.append(seconds["symlight"] / seconds["plain"])
        print(
            f"| {pair + 1} | {seconds['symlight']:.1f} | {seconds['plain']:.1f} "
            f"| {ratios[-1]:.2f} |",
            flush=True,
        )
    print(f"median ratio: {statistics.median(ratios):.2f} (load now {os.getloadavg()[0]:.1f})")


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs (ABBA order)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--whole-process",
        action="store_true",
        help="time the two commands as separate processes with default threads",
    )
    args = parser.parse_args()
    if args.whole_process:
        print(
            f"# whole processes, {args.steps} steps, {os.cpu_count()} cores "
            f"({platform.machine()}), torch {torch.__version__}, default threads, "
            f"load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        )
        whole_process(args.steps, args.repeats)
        return
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# {args.steps} steps, {os.cpu_count()} cores ({platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
    print(
        "| pair | symlight fit (s) | plain loop (s) | ratio | CPU symlight / plain (s) "
        "| CPU ratio | val MAE symlight / plain |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    ratios, cpu_ratios = [], []
    for pair in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="symlight-overhead-") as folder:
            runs = {}
            order = ("symlight", "plain") if pair % 2 == 0 else ("plain", "symlight")
            for side in order:
                if side == "symlight":
                    runs[side] = timed(symlight, args.steps, folder)
                else:
                    runs[side] = timed(plain, args.steps)
        (ts, cs, mae_s), (tp, cp, mae_p) = runs["symlight"], runs["plain"]
        ratios.append(ts / tp)
        cpu_ratios.append(cs / cp)
        print(
            f"| {pair + 1} | {ts:.1f} | {tp:.1f} | {ts / tp:.2f} | {cs:.1f} / {cp:.1f} "
            f"| {cs / cp:.2f} | {mae_s:.3f} / {mae_p:.3f} |",
            flush=True,
        )
    print(
        f"median ratio: {statistics.median(ratios):.2f} wall, "
        f"{statistics.median(cpu_ratios):.2f} CPU (load now {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main_()
