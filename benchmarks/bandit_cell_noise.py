"""What limits one cell of the bandit table: instance draw, play noise, greedy against sampled play.

For a checkpoint and a cell (default n = 100, k = 5): the share of the RL² regret that comes from
the table's own 1000 instances (``n·k/(k+1) - n·mean(max p)``), the same policy on those instances
(their means replayed with ``options={"means": p}``) with other reward draws, and the expected
regret and pseudo-regret of greedy play, sampled play and Thompson sampling on 10,000 fresh
instances. Everything plays through the task's vector environment, as ``bandit_table.py``.

    python benchmarks/bandit_cell_noise.py CKPT [--n 100] [--k 5]
"""

from __future__ import annotations

import argparse

import torch

from symlight.tasks.bandit import ENV_ID, UNIFORM, PolicyFunction, ThompsonPolicy, make_env, play
from symlight.tasks.bandit.load import load_checkpoint_module
from symlight.tasks.bandit.play import pseudo_regret


def stats(policy, n: int, k: int, count: int, seed: int, means=None) -> dict[str, float]:
    """Reward and pseudo-regret (± se) on ``count`` instances seeded ``seed + i`` (or ``means``)."""
    env = make_env(ENV_ID, count, k, n, UNIFORM)
    options = None if means is None else {"means": means}
    episodes = play(policy, env, seed, torch.Generator().manual_seed(seed), options)
    total = episodes.rewards.double().sum(0)
    pseudo = pseudo_regret(env.means, episodes.actions).sum(0)
    return {
        "reward": float(total.mean()),
        "regret": n * UNIFORM.expected_best(k) - float(total.mean()),
        "reward_se": float(total.std()) / count**0.5,
        "pseudo_regret": float(pseudo.mean()),
        "pseudo_regret_se": float(pseudo.std()) / count**0.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=12345, help="bandit_table.py's seed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n, k = args.n, args.k
    module, prior = load_checkpoint_module(args.ckpt)
    greedy = PolicyFunction(module.net, prior, greedy=True)
    sampled = PolicyFunction(module.net, prior, greedy=False)
    first = args.seed + 1_000_003 * (1000 * n + k)  # as bandit_table.py
    env = make_env(ENV_ID, 1000, k, n, UNIFORM)
    env.reset(seed=first)
    means = env.means.clone()
    best = n * means.max(1).values
    print(
        f"table's instances: n·mean(max p) = {float(best.mean()):.2f}, n·k/(k+1) = {n * k / (k + 1):.2f}, "
        f"instance term {n * k / (k + 1) - float(best.mean()):+.2f} (draw's se {float(best.std()) / 1000**0.5:.2f})"
    )
    s = stats(greedy, n, k, 1000, first)
    print(f"  the table's draws: reward {s['reward']:.3f}, pseudo-regret {s['pseudo_regret']:.3f}")
    for seed in range(3):
        s = stats(greedy, n, k, 1000, 1000 + seed, means)
        print(
            f"  other draws {seed}: reward {s['reward']:.3f}, pseudo-regret {s['pseudo_regret']:.3f}"
        )
    for name, policy in [("greedy", greedy), ("sampled", sampled), ("thompson", ThompsonPolicy())]:
        s = stats(policy, n, k, 10_000, 999)
        print(
            f"10,000 fresh instances, {name}: regret {s['regret']:.2f} ± {s['reward_se']:.2f}, "
            f"pseudo-regret {s['pseudo_regret']:.2f} ± {s['pseudo_regret_se']:.2f}"
        )


if __name__ == "__main__":
    main()
