"""The bandit policy gradient on a GPU: a short fit and test through the CLI, then load_policy.

    python benchmarks/bandit_gpu_check.py          # needs CUDA; exits 0 with a message without
    python benchmarks/bandit_gpu_check.py --cpu    # the same steps on the CPU (a dry run)

Fits ``configs/bandit.yaml`` for 40 steps (rollouts on the batched env on the GPU, validation at
k in {5, 10, 20}, n in {10, 100}), tests the checkpoint at k = 50, n = 200, prints the regrets and the
equivariance error as logged and the wall times, then plays one episode with ``load_policy`` on
the CPU. Exits 1 if something fails or a logged regret is not finite.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time

import gymnasium
import torch

import symlight.tasks  # noqa: F401  (registers the environment)
from symlight.cli import main
from symlight.tasks.bandit import load_policy


def run(accelerator: str) -> int:
    os.chdir(tempfile.mkdtemp(prefix="symlight-bandit-gpu-"))
    small = [
        "--config",
        "bandit.yaml",
        f"--trainer.accelerator={accelerator}",
        "--trainer.devices=1",
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
        "--data.init_args.steps_per_epoch=20",
        "--data.init_args.horizon=[10, 100]",
        "--data.init_args.val_instances=200",
    ]
    start = time.perf_counter()
    cli = main(["fit", *small])
    fit_s = time.perf_counter() - start
    logged = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    print(f"fit on {cli.model.device}: {fit_s:.1f} s, {cli.trainer.global_step} steps")
    for key in ("val/regret", "val/regret_thompson", "equivariance/max_abs_error"):
        print(f"  {key} = {logged.get(key)}")
    ckpt = cli.trainer.checkpoint_callback.last_model_path
    start = time.perf_counter()
    cli = main(
        [
            "test",
            *small,
            "--ckpt_path",
            ckpt,
            "--data.init_args.k=50",
            "--data.init_args.horizon=200",
        ]
    )
    tested = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    print(f"test at k=50, n=200: {time.perf_counter() - start:.1f} s")
    for key in ("test/regret", "test/regret_ucb1", "test/regret_thompson"):
        print(f"  {key} = {tested.get(key)}")
    policy = load_policy(ckpt)
    env = gymnasium.make("symlight/BernoulliBandit-v0", k=7, horizon=50)
    obs, _ = env.reset(seed=0)
    total, truncated = 0.0, False
    while not truncated:
        obs, reward, _, truncated, _ = env.step(policy(obs))
        total += reward
    print(f"load_policy: one episode at k=7, n=50, total reward {total}")
    values = [logged.get("val/regret"), tested.get("test/regret")]
    return 0 if all(v is not None and math.isfinite(v) for v in values) else 1


if __name__ == "__main__":
    if "--cpu" in sys.argv:
        sys.exit(run("cpu"))
    if not torch.cuda.is_available():
        print("CUDA is not available: nothing to check (use --cpu for a dry run)")
        sys.exit(0)
    sys.exit(run("gpu"))
