"""Time and accuracy of the main job, ``python -m symlight fit --config argmax.yaml``.

Runs the shipped config as a user would (a fresh process in a scratch folder), then reads the last
validation accuracies at each set size from TensorBoard. In the same run, a plain PyTorch loop
trains the same DeepSets for the same number of steps: the ratio of the two times is the cost of
everything symlight and Lightning add (validation at three sizes, logging, checkpoints, the
equivariance check).

    python benchmarks/argmax_fit.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import torch

from symlight.models import DeepSets
from symlight.tasks import ArgmaxDataModule

from _runs import fit, machine, scalars


def plain_pytorch(steps: int) -> tuple[float, float]:
    """Train DeepSets on argmax with a bare loop; return (seconds, accuracy at n=10)."""
    torch.manual_seed(0)
    task = ArgmaxDataModule(batches_per_epoch=steps, val_sizes=[])
    net = DeepSets(1, 1, 1, hidden=32, depth=3, pooling="max")
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    start = time.perf_counter()
    for batch in task.train_dataloader():
        loss = task.loss(net(batch["x"], batch["mask"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = [task.evaluate(net(b["x"], b["mask"]), b)["acc"] for b in task.val_dataloader()[0]]
    return seconds, torch.cat(acc).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for _ in range(args.repeats):
        seconds, workdir = fit(["--config", "argmax.yaml"])
        logged = scalars(workdir / "lightning_logs" / "argmax" / "version_0")
        steps = int(logged["train/epoch"][-1] + 1) * 100
        base_seconds, base_acc = plain_pytorch(steps)
        rows.append((seconds, base_seconds, logged, base_acc))
    print(f"# argmax.yaml fit, {machine()}, {date.today()}, {args.repeats} repeat(s)")
    print("| what | value |\n|---|---|")
    print(f"| fit wall time, whole process (s) | {statistics.median(r[0] for r in rows):.1f} |")
    print(
        f"| plain PyTorch loop, same steps, no validation (s) | {statistics.median(r[1] for r in rows):.1f} |"
    )
    print(f"| ratio | {statistics.median(r[0] / r[1] for r in rows):.2f} |")
    last = rows[-1][2]
    for tag in ("val/acc", "val/acc@n=100", "val/acc@n=1000"):
        print(f"| {tag} (last epoch) | {100 * last[tag][-1]:.2f}% |")
    print(f"| plain PyTorch val/acc | {100 * rows[-1][3]:.2f}% |")
    if "equivariance/max_abs_error" in last:
        print(
            f"| equivariance/max_abs_error (max over run) | {max(last['equivariance/max_abs_error']):.2e} |"
        )


if __name__ == "__main__":
    main()
