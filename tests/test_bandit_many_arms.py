"""The fresh-arm index policy of benchmarks/bandit_many_arms.py: its value, its play, its symmetry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from symlight.tasks.bandit import UNIFORM, bayes_optimal_value

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))  # the script imports bandit_table beside it
        spec = importlib.util.spec_from_file_location(
            "many_arms", BENCHMARKS / "bandit_many_arms.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


@pytest.mark.parametrize("horizon", [10, 15])
def test_never_returning_value_is_just_below_the_exact_bayes_optimum(bench, horizon) -> None:
    # k = 50 > horizon: an untouched arm is always at hand, as the programme assumes; never
    # returning to a left arm is a restriction, so its value cannot exceed the exact optimum
    exact = bayes_optimal_value(50, horizon, UNIFORM)
    value = float(bench.fresh_arm_values(horizon)[horizon, 0, 0])
    assert exact - 0.01 < value <= exact + 1e-9


def test_index_policy_beats_the_published_rl2_regret_at_100_pulls_of_50_arms(bench) -> None:
    # RL² regret at (100, 50): 100·50/51 − 84.9 = 13.14; the index policy's is about 12.6, and
    # its standard error on 2000 instances about 0.2
    res = bench.evaluate(bench.FreshArmIndexPolicy(100), 100, 50, 2000, seed=7)
    assert res["regret"] < 100 * 50 / 51 - 84.9
    assert res["pseudo_regret"] < 13.0


def test_index_policy_is_equivariant_to_permuting_the_arms(bench) -> None:
    gen = torch.Generator().manual_seed(0)
    policy = bench.FreshArmIndexPolicy(40)
    pulls = torch.randint(1, 6, (64, 7), generator=gen)
    successes = torch.binomial(
        pulls.double(), torch.full((64, 7), 0.5, dtype=torch.float64), generator=gen
    ).long()
    obs = {"pulls": pulls, "successes": successes, "steps_left": torch.randint(1, 41, (64,))}
    perm = torch.randperm(7, generator=gen)
    permuted = {
        "pulls": pulls[:, perm],
        "successes": successes[:, perm],
        "steps_left": obs["steps_left"],
    }
    values = bench.fresh_arm_values(40)
    index = values[obs["steps_left"][:, None].expand_as(pulls), successes, pulls - successes]
    unique = (index == index.max(-1, keepdim=True).values).sum(-1) == 1  # no tie for the largest
    assert bool(unique.any())
    chosen, chosen_permuted = policy(obs), policy(permuted)
    assert torch.equal(perm[chosen_permuted][unique], chosen[unique])
