"""A near-optimal reference for many arms: the fresh-arm index policy, against a learned policy.

When the arms outnumber what a horizon can explore (k = 50, n = 100), a Bernoulli bandit is close to
the infinite-armed one, whose Bayes-optimal value has a small dynamic programme: an arm with ``s``
successes and ``f`` failures, ``r`` pulls left, and a fresh arm (drawn from the prior) always at
hand. Its value, with ``p = (s + α) / (s + f + α + β)`` under the prior Beta(α, β), is

    Q(r, s, f) = p (1 + V(r - 1, s + 1, f)) + (1 - p) V(r - 1, s, f + 1)
    V(r, s, f) = max(Q(r, s, f), Q(r, 0, 0)),   V(0, ., .) = 0.

``Q(n, 0, 0)`` is the optimal expected reward among policies that never return to an arm they
left. The index policy pulls the arm of largest ``Q(steps left, s, f)`` (an untouched arm has
``Q(r, 0, 0)``); it may return to an arm, so it plays at least about as well. Each arm's index
depends on its own counts only, so the policy is equivariant to permutations of the arms.

The script plays it, and optionally a learned policy (greedy, as in ``bandit_table.py``), on the
instances of ``bandit_table.py`` (same seeds: instance ``i`` of a cell is the environment seeded
``cell seed + i``), and prints regret (the RL² measure), pseudo-regret, and the number of distinct
arms an episode tries.

    python benchmarks/bandit_many_arms.py [--ckpt CKPT] [--instances 1000 10000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from bandit_table import PUBLISHED, evaluate

from symlight.tasks.bandit import UNIFORM, PolicyFunction, Prior
from symlight.tasks.bandit.load import load_checkpoint_module


def fresh_arm_values(horizon: int, prior: Prior = UNIFORM) -> torch.Tensor:
    """``Q[r, s, f]`` of the module docstring for ``r <= horizon`` and ``s, f <= horizon``."""
    size = horizon + 2  # one spare count so that s + 1 and f + 1 stay in range
    s = np.arange(size, dtype=np.float64)[:, None]
    f = np.arange(size, dtype=np.float64)[None, :]
    p = (s + prior.alpha) / (s + f + prior.alpha + prior.beta)
    q = np.zeros((horizon + 1, size, size))
    v = np.zeros((size, size))
    for r in range(1, horizon + 1):
        success = np.zeros_like(v)
        success[:-1] = v[1:]
        failure = np.zeros_like(v)
        failure[:, :-1] = v[:, 1:]
        q[r] = p * (1 + success) + (1 - p) * failure
        v = np.maximum(q[r], q[r, 0, 0])
    return torch.from_numpy(q)


class FreshArmIndexPolicy:
    """Pull the arm of largest fresh-arm value ``Q(steps left, s, f)`` (lowest index among ties).

    Symmetry: equivariant to permutations of the arms (S_k): each arm's index uses its own counts.
    """

    def __init__(self, horizon: int, prior: Prior = UNIFORM) -> None:
        self.horizon, self.values = horizon, fresh_arm_values(horizon, prior)

    @torch.no_grad()
    def __call__(self, obs, generator=None) -> torch.Tensor:
        pulls, successes = obs["pulls"].cpu(), obs["successes"].cpu()
        left = obs["steps_left"].cpu()
        if int(left.max()) > self.horizon:
            raise ValueError(f"built for horizons up to {self.horizon}, got {int(left.max())}")
        index = self.values[left[:, None].expand_as(pulls), successes, pulls - successes]
        return index.argmax(-1).to(obs["pulls"].device)


def cell_list(text: str) -> list[tuple[int, int]]:
    """``"100x50,100x20"`` -> ``[(100, 50), (100, 20)]``: horizon x arms, each at least 1."""
    try:
        cells = [tuple(int(x) for x in cell.split("x")) for cell in text.split(",")]
    except ValueError:
        cells = []
    if not cells or any(len(cell) != 2 or min(cell) < 1 for cell in cells):
        raise argparse.ArgumentTypeError(
            f"expected cells as n x k, e.g. 100x50,100x20; got {text!r}"
        )
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="a bandit checkpoint to play beside the index")
    parser.add_argument("--cells", type=cell_list, default="100x50,100x20,100x10",
                        help="n x k, comma-separated")  # fmt: skip
    parser.add_argument("--instances", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seed", type=int, default=12345, help="bandit_table.py's default")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cells = args.cells
    policies = {"fresh-arm index": FreshArmIndexPolicy(max(n for n, _ in cells))}
    if args.ckpt is not None:
        try:
            module, prior = load_checkpoint_module(args.ckpt)
        except (OSError, ValueError) as error:
            parser.error(f"--ckpt {args.ckpt}: {error}")
        policies["learned"] = PolicyFunction(module.net, prior, greedy=True)
    print("| n | k | instances | policy | regret | pseudo-regret | arms tried | RL² | Gittins |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, k in cells:
        published = PUBLISHED.get((n, k), {})
        rl2 = n * k / (k + 1) - published["RL2"] if published else float("nan")
        gittins = n * k / (k + 1) - published["Gittins"] if published else float("nan")
        for count in args.instances:
            for name, policy in policies.items():
                res = evaluate(policy, n, k, count, args.seed)
                print(
                    f"| {n} | {k} | {count} | {name} | {res['regret']:.2f} ± {res['reward_se']:.2f}"
                    f" | {res['pseudo_regret']:.2f} ± {res['pseudo_regret_se']:.2f} | {res['arms_tried']:.2f}"
                    f" | {rl2:.2f} | {gittins:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
