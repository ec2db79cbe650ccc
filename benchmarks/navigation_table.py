"""Cooperative navigation: baselines and trained policies per team size, and on mpe2 itself.

Per N in {3, 10, 20, 50} (N agents, N landmarks, the environment's default arena and episode
length), every policy plays the same instances in symlight's batched environment
(`NavigationEnv`), in chunks of at most `--budget` / N² episodes: chunk c of size N is
`NavigationEnv(S, N).reset(seed + 1000 * N + c)`. Rows: random, nearest landmark, the assignment
oracle, and each `--ckpt name=path` (a NavigationPPO checkpoint, played greedily). Columns: team
return, coverage at the last step, collisions per agent-step, each mean ± standard error over the
episodes, and coverage as a fraction of the oracle's.

Then at N = 3, every policy plays `mpe2.simple_spread_v3.parallel_env` itself in a plain PettingZoo
loop (`load_policy` for checkpoints, the same `ObservationPolicy` for baselines), episode i
reset with seed i, and its return is given in three conventions (docs/navigation.md):

- ours: the sum over steps of the mean over agents of mpe2's per-agent rewards
  (local_ratio 0.5): R = Σ_t (G_t / 2 - c̄_t / 2), with G_t minus the sum over landmarks of the
  distance to the nearest agent and c̄_t the mean over agents of the other agents each overlaps;
- MAPPO's (Yu et al. 2022, marlbenchmark/on-policy): every agent receives the sum over agents of
  the original MPE scenario's rewards, G_t - c_it - 1 (that scenario counts each agent as
  colliding with itself): Σ_t (N G_t - N c̄_t - N) = 2N·R - N·T (6R - 75 at N = 3);
- the mean over agents of those rewards (EPyMARL with `reward_scalarisation: mean`): 2R - T.

    python benchmarks/navigation_table.py
    python benchmarks/navigation_table.py --ckpt centralised=lightning_logs/navigation/version_0/checkpoints/last.ckpt

Prints markdown; the tables go into benchmarks/RESULTS.md (section "Navigation").
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from symlight.tasks.navigation.baselines import assignment_oracle, baselines
from symlight.tasks.navigation.env import NavigationEnv, NavState, coverage, default_max_steps
from symlight.tasks.navigation.evaluation import METRICS, play
from symlight.tasks.navigation.load import ObservationPolicy, load_checkpoint_module, load_policy
from symlight.tasks.navigation.parallel import state_from_observations

from _runs import machine

SIZES = (3, 10, 20, 50)
MAPPO_PUBLISHED = -120.0
"""MAPPO's return on MPE Spread (N = 3) in its own convention, about (Yu et al. 2022)."""


def evaluate(policy, agents: int, episodes: int, seed: int, budget: int) -> dict[str, float]:
    """Mean ± standard error of each metric over ``episodes`` instances (in chunks)."""
    chunk = max(1, min(episodes, budget // agents**2))
    parts = []
    for c, start in enumerate(range(0, episodes, chunk)):
        size = min(chunk, episodes - start)
        parts.append(play(policy, agents, size, seed + 1000 * agents + c))
    out = {}
    for name in METRICS:
        values = torch.cat([p[name] for p in parts]).double()
        out[name] = float(values.mean())
        out[f"{name}_se"] = float(values.std()) / episodes**0.5
    return out


def on_mpe2(policy, episodes: int, agents: int = 3) -> dict[str, float]:
    """Return (our convention), coverage and collisions on mpe2's simple_spread_v3 itself."""
    from mpe2 import simple_spread_v3

    from symlight.tasks.navigation.env import collisions

    env = simple_spread_v3.parallel_env(N=agents)
    returns, covered, overlaps = [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        total, overlap, steps = 0.0, 0.0, 0
        while env.agents:
            obs, rewards, _, _, _ = env.step(policy(obs))
            total += float(np.mean(list(rewards.values())))
            state = state_from_observations(obs)
            overlap += float(collisions(state).mean())
            steps += 1
        returns.append(total)
        covered.append(float(coverage(state)[0]))
        overlaps.append(overlap / steps)
    out = {}
    for name, values in (("return", returns), ("coverage", covered), ("collisions", overlaps)):
        values = np.asarray(values)
        out[name], out[f"{name}_se"] = values.mean(), values.std(ddof=1) / len(values) ** 0.5
    return out


def oracle_on_mappo_layout(episodes: int, seed: int) -> tuple[float, float]:
    """The oracle's team return (± s.e.) at N = 3 with landmarks drawn as MAPPO's MPE draws
    them, in 0.8·[-1, 1]² (agents as before): the batched env reset, landmarks scaled by 0.8.
    """
    env = NavigationEnv(episodes, 3)
    start = env.reset(seed)
    env.state = NavState(start.agent_pos, start.agent_vel, 0.8 * start.landmark_pos, 0)
    state, total, done = env.state, torch.zeros(episodes, dtype=torch.float64), False
    with torch.no_grad():
        while not done:
            state, rewards, done = env.step(assignment_oracle(state))
            total += rewards.double().mean(dim=1)
    return float(total.mean()), float(total.std()) / episodes**0.5


def cell(result: dict[str, float], name: str, digits: int) -> str:
    return f"{result[name]:.{digits}f} ± {result[name + '_se']:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", action="append", default=[], metavar="NAME=PATH",
                        help="a NavigationPPO checkpoint and its row's name (repeat for several)")  # fmt: skip
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--episodes", type=int, default=1000, help="per team size")
    parser.add_argument("--mpe2-episodes", type=int, default=1000, help="0: skip mpe2")
    parser.add_argument("--budget", type=int, default=250_000,
                        help="episodes x N² played at once (memory of a learned policy)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints = {}
    for spec in args.ckpt:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--ckpt {spec!r}: expected NAME=PATH")
        checkpoints[name] = Path(path)
    policies = dict(baselines(torch.Generator().manual_seed(args.seed)))
    for name, path in checkpoints.items():
        module = load_checkpoint_module(path)
        policies[name] = lambda state, module=module: module.act(state, greedy=True)

    start = time.perf_counter()
    print(f"Command: `python {' '.join(sys.argv)}`; {machine()}, torch {torch.__version__}; "
          f"{date.today().isoformat()}.\n")  # fmt: skip
    head = "| N | T | policy | team return | coverage | collisions / agent-step | coverage / oracle's | s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    print("\n".join(lines), flush=True)
    for agents in args.sizes:
        results, seconds = {}, {}
        for name, policy in policies.items():
            tick = time.perf_counter()
            try:
                results[name] = evaluate(policy, agents, args.episodes, args.seed, args.budget)
            except ValueError as error:  # a network built for one team size (MLPPolicy)
                print(f"<!-- N = {agents}: {name} skipped: {error} -->", flush=True)
                continue
            seconds[name] = time.perf_counter() - tick
        for name, res in results.items():
            ratio = res["coverage"] / results["oracle"]["coverage"]
            lines.append(
                f"| {agents} | {default_max_steps(agents)} | {name} | {cell(res, 'return', 2)} | "
                f"{cell(res, 'coverage', 3)} | {cell(res, 'collisions', 4)} | {ratio:.3f} | "
                f"{seconds[name]:.0f} |"
            )
            print(lines[-1], flush=True)
    print(f"\n{args.episodes} episodes per cell (seed {args.seed}).")

    if args.mpe2_episodes:
        agents, steps = 3, default_max_steps(3)
        print(f"\nOn `mpe2.simple_spread_v3.parallel_env(N=3)`, {args.mpe2_episodes} episodes "
              "(episode i reset with seed i), in a PettingZoo loop:\n")  # fmt: skip
        head = ("| policy | return (ours) | MAPPO's convention: 6R - 75 | mean over agents: 2R - 25 "
                "| coverage | collisions / agent-step | s |")  # fmt: skip
        print(head + "\n|" + "---|" * (head.count("|") - 1), flush=True)
        rows = {name: ObservationPolicy(policy) for name, policy in policies.items()}
        rows.update({name: load_policy(path) for name, path in checkpoints.items()})
        for name, policy in rows.items():
            tick = time.perf_counter()
            res = on_mpe2(policy, args.mpe2_episodes, agents)
            r, se = res["return"], res["return_se"]
            mappo, mean = 2 * agents * r - agents * steps, 2 * r - steps
            print(f"| {name} | {r:.2f} ± {se:.2f} | {mappo:.1f} ± {2 * agents * se:.1f} | "
                  f"{mean:.1f} ± {2 * se:.1f} | {cell(res, 'coverage', 3)} | "
                  f"{cell(res, 'collisions', 4)} | {time.perf_counter() - tick:.0f} |", flush=True)  # fmt: skip
        r, se = oracle_on_mappo_layout(args.episodes, args.seed + 1000 * agents)  # N = 3 cell
        print(f"\nPublished MAPPO on MPE Spread (N = 3), in its convention: about "
              f"{MAPPO_PUBLISHED:.0f}, that is R = {(MAPPO_PUBLISHED + agents * steps) / (2 * agents):.1f} "
              "in ours. Its MPE draws landmarks in 0.8·[-1, 1]² (mpe2: [-1, 1]²), nearer the "
              f"agents on average: there the oracle's return is {r:.2f} ± {se:.2f} "
              f"({2 * agents * r - agents * steps:.1f} in MAPPO's convention; batched env, "
              "the instances of the N = 3 cell above).")  # fmt: skip
    print(f"\nTotal: {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
