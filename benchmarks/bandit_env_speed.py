"""Throughput of the batched bandit environment against gymnasium's SyncVectorEnv.

    python benchmarks/bandit_env_speed.py [--device cuda] [--num-envs 4096] [--k 10]

Measures instance-steps per second (environment steps x instances, per second of wall time) of

- ``BernoulliBanditVectorEnv`` (torch tensor operations on ``--device``), stepped ``--steps``
  times with uniformly random actions drawn on the device (autoresets included: horizon 100);
- ``gymnasium.vector.SyncVectorEnv`` over ``num_envs`` copies of ``BernoulliBanditEnv``, stepped
  ``--sync-steps`` times (it is slow) with random actions from NumPy;
- ``play(UCB1Policy(), ...)``, the loop training and evaluation share, on ``num_envs``
  instances of the vector env for ``--rollout-horizon`` pulls (policy and recording included);

all in the same run (on a GPU, after checking that the vector env there plays exactly the
episodes it plays on the CPU), ``--repeats`` times interleaved, with ``--threads`` torch CPU
threads (one by default: on a CPU shared with other jobs, more threads mostly wait for each
other). Prints the medians and the ratio to SyncVectorEnv as a Markdown table. ``--policies``
adds the time ``play`` takes for each classic policy at the sizes of the bandit table (1000
instances x 500 pulls; the Bayes-optimal policy on 20,000 instances x 10 pulls, the build of its
program excluded).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from gymnasium.vector import SyncVectorEnv

from symlight.tasks.bandit import BernoulliBanditEnv, BernoulliBanditVectorEnv, UCB1Policy, play

from _runs import machine


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


def agrees_with_cpu(device: torch.device, n: int = 256, k: int = 10, horizon: int = 20) -> bool:
    """The vector env on ``device`` plays exactly what it plays on the CPU (autoresets included)."""
    envs = [BernoulliBanditVectorEnv(n, k=k, horizon=horizon, device=d) for d in ("cpu", device)]
    outs = [env.reset(seed=3)[1]["means"].cpu() for env in envs]
    same = torch.equal(*outs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3 * horizon):
        a = torch.randint(k, (n,), generator=gen)
        results = [env.step(a.to(env.device)) for env in envs]
        (o1, r1, _, t1, i1), (o2, r2, _, t2, i2) = results
        same &= torch.equal(o1["successes"], o2["successes"].cpu())
        same &= torch.equal(r1, r2.cpu()) and torch.equal(t1, t2.cpu())
        same &= torch.equal(i1["means"], i2["means"].cpu())
    return bool(same)


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
    play(UCB1Policy(), BernoulliBanditVectorEnv(n, k, 5, device=device), 0, gen)  # warm-up
    env = BernoulliBanditVectorEnv(n, k, horizon, device=device)
    sync_device(device)
    start = time.perf_counter()
    play(UCB1Policy(), env, 0, gen)
    sync_device(device)
    return n * horizon / (time.perf_counter() - start)


def time_policies(device: torch.device) -> list[tuple[str, int, int, int, float]]:
    """Seconds ``play`` takes per policy on the instance counts of the bandit table."""
    from symlight.tasks.bandit import (
        BayesOptimalPolicy,
        EpsilonGreedyPolicy,
        GreedyPolicy,
        RandomPolicy,
        ThompsonPolicy,
    )

    cases = [(p, 1000, 10, 500) for p in (RandomPolicy(), GreedyPolicy(), EpsilonGreedyPolicy())]
    cases += [(UCB1Policy(), 1000, 10, 500), (ThompsonPolicy(), 1000, 10, 500)]
    cases += [(BayesOptimalPolicy(k, 10), 20000, k, 10) for k in (5, 10, 50)]
    out = []
    for policy, b, k, n in cases:
        gen = torch.Generator(device=device).manual_seed(0)
        env = BernoulliBanditVectorEnv(b, k, n, device=device)
        sync_device(device)
        start = time.perf_counter()
        play(policy, env, 0, gen)
        sync_device(device)
        out.append((repr(policy), b, k, n, time.perf_counter() - start))
    return out


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
        "--policies", action="store_true", help="also time play of each classic policy"
    )
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

    if device.type != "cpu":
        print(f"the vector env on {device} plays exactly as on the CPU: {agrees_with_cpu(device)}")
    print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"num_envs={n}, k={k}, horizon={h}, device={device}, median of {args.repeats}\n")
    print("| what | instance-steps per second | ratio to SyncVectorEnv |")
    print("|---|---:|---:|")
    rows = [
        (f"`BernoulliBanditVectorEnv` on {device}, {args.steps} steps", "vector"),
        (f"`SyncVectorEnv` of `BernoulliBanditEnv`, {args.sync_steps} steps", "sync"),
        (f"`play(UCB1Policy())` on {device}, {args.rollout_horizon} pulls", "rollout"),
    ]
    for label, name in rows:
        print(f"| {label} | {med[name]:,.0f} | {med[name] / med['sync']:,.1f} |")
    if args.policies:
        print("\n| `play` of | instances | k | pulls | seconds |")
        print("|---|---:|---:|---:|---:|")
        for name, b, k, n, seconds in time_policies(device):
            print(f"| `{name}` | {b} | {k} | {n} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
