"""Throughput of the batched navigation environment against mpe2's simple_spread.

    python benchmarks/navigation_env_speed.py [--device cuda] [--agents 3 20] [--seconds 2]

Measures agent-steps per second (environment steps x instances x agents, per second of wall
time) of

- ``NavigationEnv`` (torch tensor operations on ``--device``) with 1, 1024 and 4096 instances:
  each step draws uniformly random actions on the device, steps, and computes every agent's
  observation (``observations``), as mpe2 returns them; the episodes reset when they end;
- ``mpe2.simple_spread_v3.parallel_env`` (one instance, NumPy and Python loops), stepped with
  uniformly random actions and reset when its episode ends;

for each ``--agents`` N (as many landmarks; episodes of mpe2's 25 steps for both, so that resets
cost the same), each timed for at least ``--seconds``, ``--repeats`` times interleaved, with
``--threads`` torch CPU threads (one by default: on a CPU shared with other jobs, more threads
mostly wait for each other). Prints the medians and the ratio to mpe2 in the same run as a
Markdown table, and the machine. On a GPU it first checks that the environment plays there what
it plays on the CPU (float64, to 1e-9).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from mpe2 import simple_spread_v3

from symlight.tasks.navigation.env import ACTIONS, NavigationEnv, observations

from _runs import machine

EPISODE = 25


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batched(num_envs: int, agents: int, seconds: float, device: torch.device) -> float:
    env = NavigationEnv(num_envs, agents, max_steps=EPISODE, device=device)
    env.reset(seed=0)
    gen = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        actions = torch.randint(ACTIONS, (num_envs, agents), generator=gen, device=device)
        state, _, done = env.step(actions)
        observations(state)
        if done:
            env.reset()

    for _ in range(5):  # warm-up (kernels, allocator)
        step()
    sync_device(device)
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            step()
        steps += 10
        sync_device(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps * num_envs * agents / elapsed


def time_mpe2(agents: int, seconds: float) -> float:
    env = simple_spread_v3.parallel_env(N=agents, max_cycles=EPISODE, continuous_actions=False)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    names = env.possible_agents

    def step() -> None:
        actions = rng.integers(ACTIONS, size=agents)
        env.step({a: int(u) for a, u in zip(names, actions)})
        if not env.agents:
            env.reset()

    step()
    steps, start = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps * agents / elapsed


def agrees_with_cpu(device: torch.device, num_envs: int = 256, agents: int = 5) -> bool:
    """The environment on ``device`` plays, to 1e-9 in float64, what it plays on the CPU."""
    envs = [NavigationEnv(num_envs, agents, dtype=torch.float64, device=d) for d in ("cpu", device)]
    start = envs[0].reset(seed=0)
    packed = type(start)(0.4 * start.agent_pos, start.agent_vel, start.landmark_pos, 0)  # contacts
    for env in envs:
        env.state = packed
    gen = torch.Generator().manual_seed(0)
    same = True
    for _ in range(envs[0].max_steps):
        actions = torch.randint(ACTIONS, (num_envs, agents), generator=gen)
        (s1, r1, _), (s2, r2, _) = (env.step(actions.to(env.device)) for env in envs)
        same &= torch.allclose(observations(s1), observations(s2).cpu(), rtol=0, atol=1e-9)
        same &= torch.allclose(r1, r2.cpu(), rtol=0, atol=1e-9)
    return bool(same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--agents", type=int, nargs="+", default=[3, 20])
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=2.0, help="least time per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    runs: dict[tuple[int, str], list[float]] = {}
    for _ in range(args.repeats):
        for n in args.agents:
            runs.setdefault((n, "mpe2"), []).append(time_mpe2(n, args.seconds))
            for e in args.instances:
                rate = time_batched(e, n, args.seconds, device)
                runs.setdefault((n, str(e)), []).append(rate)
    med = {key: statistics.median(v) for key, v in runs.items()}

    if device.type != "cpu":
        print(f"NavigationEnv on {device} plays as on the CPU (1e-9): {agrees_with_cpu(device)}")
    print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"device={device}, episodes of {EPISODE} steps, median of {args.repeats}\n")
    print("| N | environment | instances | agent-steps per second | ratio to mpe2 |")
    print("|---:|---|---:|---:|---:|")
    for n in args.agents:
        base = med[(n, "mpe2")]
        print(f"| {n} | `mpe2.simple_spread_v3.parallel_env` | 1 | {base:,.0f} | 1.0 |")
        for e in args.instances:
            rate = med[(n, str(e))]
            label = f"`NavigationEnv` on {device}"
            print(f"| {n} | {label} | {e} | {rate:,.0f} | {rate / base:,.1f} |")


if __name__ == "__main__":
    main()
