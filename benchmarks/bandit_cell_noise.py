"""What limits one cell of the bandit table: instance draw, play noise, greedy against sampled play.

For a checkpoint and a cell (default n = 100, k = 5): the share of the RL² regret that comes from
the table's own 1000 instances (``n·k/(k+1) - n·mean(max p)``), the same policy on those instances
with other play seeds, and the expected regret and pseudo-regret of greedy play, sampled play and
Thompson sampling on 10,000 fresh instances.

    python benchmarks/bandit_cell_noise.py CKPT [--n 100] [--k 5]
"""

from __future__ import annotations

import argparse

import torch

from symlight.tasks.bandit import PolicyFunction, rollout, summarize
from symlight.tasks.bandit.load import load_checkpoint_module
from symlight.tasks.bandit.task import classic_policies


def play(policy, means: torch.Tensor, n: int, k: int, seed: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(seed)
    runs = [rollout(policy, means[i : i + 5000], n, gen) for i in range(0, len(means), 5000)]
    return summarize({key: torch.cat([r[key] for r in runs]) for key in runs[0]}, k, n)


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
    gen = torch.Generator().manual_seed(args.seed + 1000 * n + k)  # as bandit_table.py
    means = torch.rand(1000, k, generator=gen, dtype=torch.float64)
    best = n * means.max(1).values
    print(
        f"table's instances: n·mean(max p) = {float(best.mean()):.2f}, n·k/(k+1) = {n * k / (k + 1):.2f}, "
        f"instance term {n * k / (k + 1) - float(best.mean()):+.2f} (draw's se {float(best.std()) / 1000**0.5:.2f})"
    )
    for seed in range(3):
        s = play(greedy, means, n, k, 1000 + seed)
        print(
            f"  play seed {seed}: reward {s['reward']:.3f}, pseudo-regret {s['pseudo_regret']:.3f}"
        )
    fresh = torch.rand(10_000, k, generator=torch.Generator().manual_seed(999), dtype=torch.float64)
    for name, policy in [
        ("greedy", greedy),
        ("sampled", sampled),
        ("thompson", classic_policies()["thompson"]),
    ]:
        s = play(policy, fresh, n, k, 7)
        print(
            f"10,000 fresh instances, {name}: regret {s['regret']:.2f} ± {s['reward_se']:.2f}, "
            f"pseudo-regret {s['pseudo_regret']:.2f} ± {s['pseudo_regret_se']:.2f}"
        )


if __name__ == "__main__":
    main()
