"""BanditDataModule: what the bandit task declares, and the episodes and instances it deals.

The network sees one feature vector per arm (:mod:`.features`) and returns one logit per arm, so
the task's output representation is ``Rep(1, order=1)``: the arms are the set, and permuting them
permutes the logits. Training data are not a dataset but *episode specs*: each training batch names the number of arms,
the horizon, the number of parallel episodes and a seed, and the policy-gradient module
(:class:`~.training.BanditPolicyGradient`) plays them on the batched environment. Validation and
test use fixed, seeded instances (arm means) for each cell ``(k, horizon)``; the classic policies
are played once on the same instances and their figures cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric, Metric

from symlight.core.rep import Rep

from ..base import FreshBatches, SetTask, batch_loader, check_at_least
from .evaluate import rollout
from .features import NUM_FEATURES, arm_features
from .policies import EpsilonGreedyPolicy, GreedyPolicy, RandomPolicy, ThompsonPolicy, UCB1Policy
from .sampling import beta

__all__ = ["BanditDataModule", "Cell", "classic_policies"]

Cell = tuple[int, int]
"""``(k, horizon)``: number of arms and number of pulls of an episode."""


def classic_policies() -> dict[str, Any]:
    """The classic baselines played on the validation and test instances, by metric suffix."""
    return {
        "random": RandomPolicy(),
        "greedy": GreedyPolicy(),
        "epsilon_greedy": EpsilonGreedyPolicy(0.1),
        "ucb1": UCB1Policy(),
        "thompson": ThompsonPolicy(),
    }


def _as_list(value: int | Sequence[int], name: str) -> list[int]:
    values = [value] if isinstance(value, int) else [int(v) for v in value]
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{name} must be a positive integer or a list of them, got {value!r}")
    return values


class BanditDataModule(SetTask):
    """Bernoulli bandits with arm means drawn from a Beta prior; the arms are the set.

    Symmetry: relabelling the arms permutes the per-arm features and must permute the policy's
    logits the same way (equivariant to S_k, one logit per arm). Episodes of every ``(k,
    horizon)`` pair of ``k`` x ``horizon`` are mixed in training; validation and test report each
    pair as its own loader (``val/regret@k=5,n=100``; a single pair logs plain ``val/regret``).

    Regret is the measure of the RL² table, ``n·E[max p] - total reward`` with
    ``E[max p] = k/(k+1)`` under the uniform prior (``n·(expected best mean)`` in general);
    ``pseudo_regret`` is ``Σ_t (max p - p_{a_t})`` on the instance itself.

    Args:
        k: number of arms, or a list to mix in training (and to evaluate on).
        horizon: pulls per episode, or a list to mix in training (and to evaluate on).
        train_horizon: horizons to mix in training instead of ``horizon`` (which then only
            names the validation and test cells).
        num_envs: most episodes played in parallel in one training step.
        env_steps: training budget per step in episode-steps: a step plays
            ``clamp(env_steps // horizon, min_envs, num_envs)`` episodes, so long and short
            horizons cost about the same.
        min_envs: fewest episodes in one training step.
        steps_per_epoch: training steps between validations.
        val_instances: fixed instances per ``(k, horizon)`` cell for validation.
        test_instances: fixed instances per cell for test.
        prior: Beta prior ``(α, β)`` of the arm means.
        seed: seeds training episodes and the fixed instances.

    """

    def __init__(
        self,
        k: int | list[int] = 5,
        horizon: int | list[int] = 100,
        train_horizon: int | list[int] | None = None,
        num_envs: int = 4096,
        env_steps: int = 40_000,
        min_envs: int = 64,
        steps_per_epoch: int = 50,
        val_instances: int = 500,
        test_instances: int = 1000,
        prior: tuple[float, float] = (1.0, 1.0),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.ks = _as_list(k, "k")
        self.horizons = _as_list(horizon, "horizon")
        self.train_horizons = (
            self.horizons if train_horizon is None else _as_list(train_horizon, "train_horizon")
        )
        check_at_least(
            1,
            num_envs=num_envs,
            env_steps=env_steps,
            min_envs=min_envs,
            steps_per_epoch=steps_per_epoch,
            val_instances=val_instances,
            test_instances=test_instances,
        )
        if min_envs > num_envs:
            raise ValueError(f"min_envs ({min_envs}) must not exceed num_envs ({num_envs})")
        if len(prior) != 2 or min(prior) <= 0:
            raise ValueError(f"prior must be two positive Beta parameters (α, β), got {prior!r}")
        self.save_hyperparameters()
        self.num_envs, self.env_steps, self.min_envs = num_envs, env_steps, min_envs
        self.val_instances, self.test_instances = val_instances, test_instances
        self.prior = (float(prior[0]), float(prior[1]))
        self.seed = seed

        self.rep_out = Rep(1, order=1)
        self.element_shape = (NUM_FEATURES,)
        self.train_cells: list[Cell] = [(k_, n) for k_ in self.ks for n in self.train_horizons]
        self.eval_cells: list[Cell] = [(k_, n) for k_ in self.ks for n in self.horizons]
        single = len(self.eval_cells) == 1
        self.val_names = [""] if single else [f"@k={k_},n={n}" for k_, n in self.eval_cells]
        self.baselines = list(classic_policies())
        self.train_batches = FreshBatches(self, self._draw_episodes, steps_per_epoch)
        self._fixed: dict[str, list[dict[str, Any]]] = {}

    # -- sizes --------------------------------------------------------------------------------
    def _draw_episodes(self, gen: torch.Generator) -> dict[str, int]:
        """One training batch: the (k, horizon) cell to play, its episode count and a seed."""
        k, horizon = self.train_cells[
            int(torch.randint(len(self.train_cells), (1,), generator=gen))
        ]
        return {
            "k": k,
            "horizon": horizon,
            "num_envs": self.envs_for(horizon),
            "seed": int(torch.randint(2**40, (1,), generator=gen)),
        }

    def envs_for(self, horizon: int) -> int:
        """Episodes played in parallel in a training step of this horizon."""
        return max(self.min_envs, min(self.num_envs, self.env_steps // horizon))

    def expected_best(self, k: int) -> float:
        """``E[max of k arm means]`` under the prior: ``k/(k+1)`` for the uniform prior (else
        estimated from 100,000 seeded draws).
        """
        if self.prior == (1.0, 1.0):
            return k / (k + 1)
        draws = self.sample_means((100_000, k), torch.Generator().manual_seed(self.seed))
        return float(draws.max(1).values.mean())

    def sample_means(self, shape: tuple[int, int], generator: torch.Generator) -> Tensor:
        """Arm means drawn from the prior with ``generator`` (reproducible)."""
        if self.prior == (1.0, 1.0):
            return torch.rand(shape, generator=generator)
        alpha, beta_ = (torch.full(shape, p, dtype=torch.float64) for p in self.prior)
        return beta(alpha, beta_, generator).to(torch.get_default_dtype())

    # -- the task contract ----------------------------------------------------------------------
    def metrics(self) -> Mapping[str, Metric]:
        names = ["regret", "pseudo_regret", "reward"] + [f"regret_{b}" for b in self.baselines]
        return {name: MeanMetric() for name in names}

    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError(
            "the bandit task has no supervised loss: BanditPolicyGradient trains by playing episodes"
        )

    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError(
            "the bandit task is evaluated by playing episodes: use BanditPolicyGradient"
        )

    # -- data ---------------------------------------------------------------------------------
    def _instances(self, stage: str) -> list[dict[str, Any]]:
        """One batch per cell: fixed instances, baseline figures and states to check on."""
        if stage not in self._fixed:
            salt, count = (
                (10_000, self.val_instances) if stage == "val" else (20_000, self.test_instances)
            )
            self._fixed[stage] = [
                self._cell_batch(cell, count, salt + i) for i, cell in enumerate(self.eval_cells)
            ]
        return self._fixed[stage]

    def _cell_batch(self, cell: Cell, count: int, salt: int) -> dict[str, Any]:
        k, horizon = cell
        gen = self.fixed_generator(salt)
        means = self.sample_means((count, k), gen)
        play_seed = int(torch.randint(2**40, (1,), generator=gen))
        best = self.expected_best(k) * horizon
        baselines: dict[str, Tensor] = {}
        curves: dict[str, Tensor] = {}
        states = None
        for name, policy in classic_policies().items():
            run = rollout(policy, means, horizon, torch.Generator().manual_seed(play_seed))
            baselines[name] = best - run["total_reward"]
            curves[name] = run["pseudo_regret"].mean(0).cumsum(0)
            if name == "thompson":
                states = _states(run["actions"], run["rewards"], k, horizon, gen)
        pulls, successes, steps_left = states
        x = arm_features(pulls, successes, steps_left, self.prior)
        return {
            "x": x,
            "mask": torch.ones(count, k, dtype=torch.bool),
            "means": means,
            "best": torch.full((count,), best),
            "horizon": horizon,
            "seed": play_seed,
            **{f"regret_{name}": value for name, value in baselines.items()},
            **{f"curve_{name}": value for name, value in curves.items()},
        }

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> list[DataLoader]:
        return [batch_loader([b]) for b in self._instances("val")]

    def test_dataloader(self) -> list[DataLoader]:
        return [batch_loader([b]) for b in self._instances("test")]


def _states(
    actions: Tensor, rewards: Tensor, k: int, horizon: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Per instance, the counts after a random number of steps of a played episode.

    ``actions`` and ``rewards`` are ``(B, horizon)``.
    """
    count = actions.shape[0]
    t = torch.randint(horizon, (count,), generator=gen)
    played = torch.arange(horizon)[None, :] < t[:, None]  # (B, T)
    onehot = torch.nn.functional.one_hot(actions.long(), k) * played[..., None]
    pulls = onehot.sum(1)
    successes = (onehot * rewards.long()[..., None]).sum(1)
    return pulls, successes, horizon - t
