"""Throughput of the batched bandit environment against gymnasium's SyncVectorEnv.

    python benchmarks/bandit_env_speed.py [--device cuda] [--num-envs 4096] [--k 10]

Measures instance-steps per second (environment steps x instances, per second of wall time) of

- ``BernoulliBanditVectorEnv`` (torch tensor operations on ``--device``), stepped ``--steps``
  times with uniformly random actions drawn on the device (autoresets included: horizon 100);
- ``gymnasium.vector.SyncVectorEnv`` over ``num_envs`` copies of ``BernoulliBanditEnv``, stepped
  ``--sync-steps`` times (it is slow) with random actions from NumPy;
- ``rollout(UCB1Policy(), ...)``, the evaluation helper, on ``num_envs`` fixed instances for
  ``--rollout-horizon`` pulls (policy included);

all in the same run, ``--repeats`` times interleaved, with ``--threads`` torch CPU threads (one by
default: on a CPU shared with other jobs, more threads mostly wait for each other), and prints the medians and the ratio of the
vector env to SyncVectorEnv as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _runs import machine
from gymnasium.vector import SyncVectorEnv

from symlight.tasks.bandit import BernoulliBanditEnv, BernoulliBanditVectorEnv, UCB1Policy, rollout


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_vector(n: int, k: int, horizon: int, steps: int, device: torch.device) -> float:
    env = BernoulliBanditVectorEnv(n, k=k, horizon=horizon, device=device)
    env.reset(seed=0)
    gen = torch.Generator(device=device).manual_seed(0)
    for _ in range(5):  # warm-up (CUDA kernels, allocator)
        env.step(torch.randint(k, (n,), generator=gen, device=device))
    sync_device(device)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(torch.randint(k, (n,), generator=gen, device=device))
    sync_device(device)
    return n * steps / (time.perf_counter() - start)


def time_sync(n: int, k: int, horizon: int, steps: int) -> float:
    env = SyncVectorEnv([lambda: BernoulliBanditEnv(k=k, horizon=horizon) for _ in range(n)])
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    env.step(rng.integers(k, size=n))
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(k, size=n))
    return n * steps / (time.perf_counter() - start)


def time_rollout(n: int, k: int, horizon: int, device: torch.device) -> float:
    gen = torch.Generator(device=device).manual_seed(0)
    means = torch.rand(n, k, generator=gen, device=device, dtype=torch.float64)
    rollout(UCB1Policy(), means, 5, generator=gen)  # warm-up
    sync_device(device)
    start = time.perf_counter()
    rollout(UCB1Policy(), means, horizon, generator=gen)
    sync_device(device)
    return n * horizon / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000, help="vector env steps per repeat")
    parser.add_argument("--sync-steps", type=int, default=10, help="SyncVectorEnv steps per repeat")
    parser.add_argument("--rollout-horizon", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n, k, h = args.num_envs, args.k, args.horizon

    runs: dict[str, list[float]] = {"vector": [], "sync": [], "rollout": []}
    for _ in range(args.repeats):
        runs["vector"].append(time_vector(n, k, h, args.steps, device))
        runs["sync"].append(time_sync(n, k, h, args.sync_steps))
        runs["rollout"].append(time_rollout(n, k, args.rollout_horizon, device))
    med = {name: statistics.median(v) for name, v in runs.items()}

    print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"num_envs={n}, k={k}, horizon={h}, device={device}, median of {args.repeats}\n")
    print("| what | instance-steps per second | ratio to SyncVectorEnv |")
    print("|---|---:|---:|")
    rows = [
        (f"`BernoulliBanditVectorEnv` on {device}, {args.steps} steps", "vector"),
        (f"`SyncVectorEnv` of `BernoulliBanditEnv`, {args.sync_steps} steps", "sync"),
        (f"`rollout(UCB1Policy())` on {device}, {args.rollout_horizon} pulls", "rollout"),
    ]
    for label, name in rows:
        print(f"| {label} | {med[name]:,.0f} | {med[name] / med['sync']:,.1f} |")


if __name__ == "__main__":
    main()
