"""The RL² table (Duan et al. 2016, Table 1) for one learned policy and the classic policies.

Nine cells n in {10, 100, 500} x k in {5, 10, 50}; per cell 1000 instances (20,000 at n = 10) with
arm means i.i.d. U[0, 1], the same instances for every policy. For each policy: mean total reward
± standard error, regret as in the RL² table (n·k/(k+1) - mean total reward) and pseudo-regret
(mean of n·max p - Σ_t p_{a_t}) ± standard error. Beside them, the published RL² and Gittins
regrets and the exact Bayes-optimal total reward where known (ANCHORS.md). The learned policy
plays greedily (the arm of largest logit) and was trained on k in {5, 10} only.

    python benchmarks/bandit_table.py --ckpt lightning_logs/bandit/version_0/checkpoints/last.ckpt
    python benchmarks/bandit_table.py --train          # first: python -m symlight fit -c bandit.yaml

The table goes into benchmarks/RESULTS.md (section "Bandit"), with the command, machine and date.
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import time
from datetime import date
from pathlib import Path

import torch

from symlight.tasks.bandit import BayesOptimalPolicy, PolicyFunction, rollout, summarize
from symlight.tasks.bandit.load import load_checkpoint_module
from symlight.tasks.bandit.task import classic_policies

from _runs import fit, machine

CELLS = [(n, k) for n in (10, 100, 500) for k in (5, 10, 50)]

# Published total rewards (RL², Table 1), by (n, k): Gittins, TS, OTS, UCB1, eps-greedy, RL².
PUBLISHED = {
    (10, 5): {"Gittins": 6.6, "RL2": 6.7},
    (10, 10): {"Gittins": 6.6, "RL2": 6.7},
    (10, 50): {"Gittins": 6.5, "RL2": 6.8},
    (100, 5): {"Gittins": 78.3, "RL2": 78.7},
    (100, 10): {"Gittins": 82.8, "RL2": 83.5},
    (100, 50): {"Gittins": 85.2, "RL2": 84.9},
    (500, 5): {"Gittins": 405.8, "RL2": 401.6},
    (500, 10): {"Gittins": 437.8, "RL2": 432.5},
    (500, 50): {"Gittins": 463.7, "RL2": 438.9},
}
BAYES_OPTIMAL = {(10, 5): 6.660, (10, 10): 6.714, (10, 50): 6.714}  # exact, ANCHORS.md


def evaluate(policy, n: int, k: int, instances: int, seed: int) -> dict[str, float]:
    """Mean total reward, regret and pseudo-regret (± standard errors) of a batched policy.

    The instances and the reward draws depend on the cell and ``seed`` only, so every policy
    meets the same instances.
    """
    gen = torch.Generator().manual_seed(seed + 1000 * n + k)
    means = torch.rand(instances, k, generator=gen, dtype=torch.float64)
    play = torch.Generator().manual_seed(seed + 7 + 1000 * n + k)
    results = [
        rollout(policy, means[start : start + 5000], n, play) for start in range(0, instances, 5000)
    ]
    merged = {key: torch.cat([r[key] for r in results]) for key in results[0]}
    return summarize(merged, k, n)


def table(ckpt: Path, seed: int, instances: int, instances_small: int) -> tuple[str, list[str]]:
    module, prior = load_checkpoint_module(ckpt)
    learned = PolicyFunction(module.net, prior, greedy=True)
    classics = classic_policies()
    head = (
        "| n | k | learned reward | learned regret | learned pseudo-regret | "
        + " | ".join(f"{c} regret" for c in classics)
        + " | RL² regret | Gittins regret | Bayes-opt reward: exact (played) | bar |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    verdicts = []
    for n, k in CELLS:
        count = instances_small if n <= 10 else instances
        me = evaluate(learned, n, k, count, seed)
        res = {name: evaluate(policy, n, k, count, seed) for name, policy in classics.items()}
        pub = PUBLISHED[(n, k)]
        oracle = n * k / (k + 1)
        rl2, gittins = oracle - pub["RL2"], oracle - pub["Gittins"]
        bayes = BAYES_OPTIMAL.get((n, k))
        optimum = ""
        if bayes is not None:
            played = evaluate(BayesOptimalPolicy(k, n), n, k, count, seed)["reward"]
            optimum = f"{bayes:.3f} ({played:.3f})"
            ok = me["reward"] >= bayes - 0.05
            verdict = f"{'pass' if ok else 'FAIL'} ({me['reward'] - bayes:+.3f} vs Bayes-opt)"
        else:
            best = min(r["regret"] for r in res.values())
            ok = me["regret"] <= rl2 + me["reward_se"] and me["regret"] <= best + me["reward_se"]
            verdict = "pass" if ok else "FAIL"
            if n == 500:
                verdict += f" ({me['regret'] / gittins:.2f}x Gittins)"
        verdicts.append(verdict)
        lines.append(
            f"| {n} | {k} | {me['reward']:.3f} ± {me['reward_se']:.3f} | {me['regret']:.2f} | "
            f"{me['pseudo_regret']:.2f} ± {me['pseudo_regret_se']:.2f} | "
            + " | ".join(f"{r['regret']:.2f}" for r in res.values())
            + f" | {rl2:.2f} | {gittins:.2f} | {optimum} | {verdict} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines), verdicts


def write_results(section: str, path: Path) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(r"\n## Bandit: .*?(?=\n## |\Z)", re.S)
    text = pattern.sub("", text).rstrip() + "\n\n" + section.strip() + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="a BanditPolicyGradient checkpoint")
    parser.add_argument("--train", action="store_true", help="train with bandit.yaml first")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--instances-small", type=int, default=20_000, help="at n = 10")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trained = ""
    if args.train:
        start = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, workdir = fit(["--config", "bandit.yaml"])
        end = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (end.ru_utime + end.ru_stime) - (start.ru_utime + start.ru_stime)
        args.ckpt = next(workdir.glob("lightning_logs/bandit/version_*/checkpoints/last.ckpt"))
        trained = (
            f"- Training: `python -m symlight fit --config bandit.yaml`, {seconds:.0f} s wall, "
            f"{cpu:.0f} s CPU.\n"
        )
    if args.ckpt is None:
        parser.error("give --ckpt PATH or --train")
    start = time.perf_counter()
    body, verdicts = table(args.ckpt, args.seed, args.instances, args.instances_small)
    seconds = time.perf_counter() - start
    command = "python " + " ".join(sys.argv)
    section = f"""## Bandit: one policy for every k and n (benchmarks/bandit_table.py)

{__doc__.split(chr(10) + chr(10))[0].strip()}

- Command: `{command}`.
- Machine: {machine()}, torch {torch.__version__}; {date.today().isoformat()}; table in {seconds:.0f} s.
- Regret is the RL² measure; its standard error is that of the mean total reward (it includes the
  draw of the instances, so compare policies on the pseudo-regret column, same instances, smaller error).
- bar: n = 10: total reward within 0.05 of the exact Bayes-optimal value; n = 100, 500: regret at
  or below RL²'s and every classic policy's, within one standard error; at n = 500, regret / Gittins.
{trained}
{body}
"""
    print(section)
    if not args.no_write:
        write_results(section, args.results)


if __name__ == "__main__":
    main()
