"""BanditDataModule: the bandit problem a policy is trained and evaluated on.

It declares the environment (a gymnasium id and its keyword arguments), the prior of the arm means,
the cells ``(k, horizon)`` to train on and to evaluate on, and how many episodes each costs. It
holds no data: :class:`~.training.BanditPolicyGradient` plays the environment. The network sees
one feature vector per arm (:mod:`.features`) and returns one logit per arm, so the task's output
representation is ``Rep(1, order=1)``: the arms are the set, and permuting them permutes the logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import torch
from gymnasium.vector import VectorEnv
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric, Metric

from symlight.core.rep import Rep

from ..base import FreshBatches, SetTask, batch_loader, check_at_least, positive_ints
from .env import ENV_ID
from .features import NUM_FEATURES, arm_features
from .play import make_env
from .policies import classic_policies
from .prior import Prior

__all__ = ["BanditDataModule", "Cell"]

Cell = tuple[int, int]
"""``(k, horizon)``: number of arms and number of pulls of an episode."""


class BanditDataModule(SetTask):
    """Multi-armed bandits whose arm means are drawn from a prior; the arms are the set.

    Symmetry: relabelling the arms permutes the per-arm features and must permute the policy's
    logits the same way (equivariant to S_k, one logit per arm). Training mixes episodes of every
    ``(k, horizon)`` of ``k`` x ``train_horizon``; validation and test play each ``(k, horizon)``
    of ``k`` x ``horizon`` as its own loader (``val/regret@k=5,n=100``; a single pair logs plain
    ``val/regret``), on fixed instances: the environment seeded the same way for every policy.

    Regret is the measure of the RL² table, ``n·E[max p] − total reward``, with ``E[max p]``
    under the prior (``k/(k+1)`` for U[0, 1]).

    Args:
        env: gymnasium id of the environment. ``symlight/BernoulliBandit-v0`` (the default) is
            played by the torch vector env; any other id is vectorised with
            ``gymnasium.make_vec`` and must take ``k`` and ``horizon`` keyword arguments and
            observe ``pulls``, ``successes`` and ``steps_left``
            (:func:`~symlight.tasks.bandit.observation_space`).
        env_kwargs: further keyword arguments of the environment.
        prior: Beta prior ``(α, β)`` of the arm means: ``symlight/BernoulliBandit-v0`` draws them
            from it, and the policy's features, the classic policies and the regret assume it.
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
        seed: seeds the order of the training cells, the training episodes and the fixed
            instances.

    """

    def __init__(
        self,
        env: str = ENV_ID,
        env_kwargs: dict[str, Any] | None = None,
        prior: tuple[float, float] = (1.0, 1.0),
        k: int | list[int] = 5,
        horizon: int | list[int] = 100,
        train_horizon: int | list[int] | None = None,
        num_envs: int = 4096,
        env_steps: int = 40_000,
        min_envs: int = 64,
        steps_per_epoch: int = 50,
        val_instances: int = 500,
        test_instances: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.ks = positive_ints(k, "k")
        self.horizons = positive_ints(horizon, "horizon")
        self.train_horizons = (
            self.horizons
            if train_horizon is None
            else positive_ints(train_horizon, "train_horizon")
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
        try:
            gymnasium.spec(env)
        except gymnasium.error.Error as error:
            raise ValueError(f"env={env!r} is not a registered gymnasium id ({error})") from None
        self.save_hyperparameters()
        self.env_id, self.env_kwargs = env, dict(env_kwargs or {})
        self.prior = Prior.of(prior)
        self.num_envs, self.env_steps, self.min_envs = num_envs, env_steps, min_envs
        self.val_instances, self.test_instances = val_instances, test_instances
        self.seed = seed

        self.rep_out = Rep(1, order=1)
        self.element_shape = (NUM_FEATURES,)
        self.train_cells: list[Cell] = [(k_, n) for k_ in self.ks for n in self.train_horizons]
        self.eval_cells: list[Cell] = [(k_, n) for k_ in self.ks for n in self.horizons]
        single = len(self.eval_cells) == 1
        self.val_names = [""] if single else [f"@k={k_},n={n}" for k_, n in self.eval_cells]
        self.baselines = list(classic_policies())
        self.train_batches = FreshBatches(self, self._draw_cell, steps_per_epoch)

    # -- the problem --------------------------------------------------------------------------
    def make_env(
        self, k: int, horizon: int, num_envs: int, device: torch.device | str = "cpu"
    ) -> VectorEnv:
        """``num_envs`` episodes of ``k`` arms and ``horizon`` pulls of the task's environment."""
        return make_env(self.env_id, num_envs, k, horizon, self.prior, device, **self.env_kwargs)

    def envs_for(self, horizon: int) -> int:
        """Episodes played in parallel in a training step of this horizon."""
        return max(self.min_envs, min(self.num_envs, self.env_steps // horizon))

    def _draw_cell(self, gen: torch.Generator) -> dict[str, int]:
        """What one training step plays: a cell drawn uniformly, and its number of episodes."""
        k, horizon = self.train_cells[
            int(torch.randint(len(self.train_cells), (1,), generator=gen))
        ]
        return {"k": k, "horizon": horizon, "num_envs": self.envs_for(horizon)}

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

    # -- loaders ------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> list[DataLoader]:
        return [batch_loader([self._cell(cell, self.val_instances, 10_000 + i)])
                for i, cell in enumerate(self.eval_cells)]  # fmt: skip

    def test_dataloader(self) -> list[DataLoader]:
        return [batch_loader([self._cell(cell, self.test_instances, 20_000 + i)])
                for i, cell in enumerate(self.eval_cells)]  # fmt: skip

    def _cell(self, cell: Cell, instances: int, salt: int, states: int = 64) -> dict[str, Any]:
        """An evaluation cell: ``instances`` episodes of the env reset with ``seed``, plus
        ``states`` random observations of the cell as features (``x``, ``mask``), on which
        ``EquivarianceCheck`` measures the policy.
        """
        k, horizon = cell
        gen = self.fixed_generator(salt)
        t = torch.randint(horizon, (states,), generator=gen)
        arms = torch.randint(k, (states, horizon), generator=gen)
        played = (torch.arange(horizon) < t[:, None])[..., None]
        pulls = (torch.nn.functional.one_hot(arms, k) * played).sum(1)
        rates = torch.rand(states, k, generator=gen)
        successes = torch.binomial(pulls.float(), rates, generator=gen).long()
        return {
            "k": k,
            "horizon": horizon,
            "instances": instances,
            "seed": int(torch.randint(2**40, (1,), generator=gen)),
            "x": arm_features(pulls, successes, horizon - t, self.prior),
            "mask": torch.ones(states, k, dtype=torch.bool),
        }
