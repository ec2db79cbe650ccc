"""NavigationDataModule: the cooperative-navigation problem a policy is trained and evaluated on.

It declares the team sizes to train on and to evaluate on, how many episodes each costs, and
the arena and episode length (scaled with the team size by default, :mod:`.env`). It holds no
data: :class:`~.training.NavigationPPO` plays the environment. Agents and landmarks are points
of the plane, and the policy returns five logits per agent, so the task's output representation
is ``5x(1,0)`` over the two sets (agents, landmarks): relabelling the agents permutes the
logits, relabelling the landmarks leaves them unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric, Metric

from symlight.core.rep import Rep

from ..base import FreshBatches, SetTask, batch_loader, check_at_least, positive_ints
from .baselines import baselines
from .env import ACTIONS, NavigationEnv, default_arena

__all__ = ["BASELINES", "NavigationDataModule"]

BASELINES = tuple(baselines())
"""The baselines validation plays beside the policy (``random``, ``nearest``, ``oracle``)."""


class NavigationDataModule(SetTask):
    """Cooperative navigation with ``N`` agents and ``N`` landmarks; agents and landmarks are
    the two sets.

    Symmetry: S_N x S_M. Relabelling the agents permutes their positions, velocities and the
    policy's logits alike (order ``(1,0)``); relabelling the landmarks permutes their positions
    (order ``(0,1)``) and changes no logit. ``EquivarianceCheck`` measures the policy on
    ``check_states`` random states of each validation size.

    Each training update plays ``num_envs`` episodes of one team size drawn from ``agents``
    (a batch has one N, so nothing is padded), seeded from the run's seed, the rank and the
    update, so a resumed fit plays what an uninterrupted one plays. Validation and test play
    each size of ``val_agents`` as its own loader, on fixed instances (the environment reset
    with the same seed for every policy), logged as ``val/return@N=3``, ``val/coverage@N=10``,
    ... and ``val/coverage`` over all sizes.

    Args:
        agents: team sizes to train on, one drawn uniformly per update.
        val_agents: team sizes to validate and test on.
        num_envs: episodes played in parallel in one training update.
        steps_per_epoch: training updates between validations.
        val_instances: fixed episodes per validation size.
        test_instances: fixed episodes per test size.
        arena: half-width of the arena; ``None``: ``sqrt(N / 3)``, which keeps the density of
            landmarks of mpe2's ``N = 3`` at every N.
        max_steps: steps per episode; ``None``: ``ceil(25 * arena)`` (25 at N = 3, as mpe2;
            :func:`~.env.default_max_steps`), so an episode crosses the arena as often at
            every N.
        check_states: random states per validation size on which the equivariance is checked.
        seed: seeds the training stream and the fixed instances.

    """

    def __init__(
        self,
        agents: int | list[int] = [3, 4, 5],  # noqa: B006  (read by LightningCLI, never mutated)
        val_agents: int | list[int] = [3, 10, 20],  # noqa: B006
        num_envs: int = 128,
        steps_per_epoch: int = 20,
        val_instances: int = 200,
        test_instances: int = 1000,
        arena: float | None = None,
        max_steps: int | None = None,
        check_states: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.train_agents = positive_ints(agents, "agents")
        self.val_agents = positive_ints(val_agents, "val_agents")
        check_at_least(
            1,
            num_envs=num_envs,
            steps_per_epoch=steps_per_epoch,
            val_instances=val_instances,
            test_instances=test_instances,
            check_states=check_states,
        )
        if arena is not None and not arena > 0:
            raise ValueError(f"arena must be a positive half-width or None, got {arena}")
        if max_steps is not None:
            check_at_least(1, max_steps=max_steps)
        self.save_hyperparameters()
        self.num_envs, self.val_instances, self.test_instances = (
            num_envs, val_instances, test_instances
        )  # fmt: skip
        self.arena, self.max_steps = arena, max_steps
        self.check_states, self.seed = check_states, seed

        self.rep_out = Rep(ACTIONS, (1, 0))  # five logits per agent, none per landmark
        self.element_shape = (2,)  # agents and landmarks are points of the plane
        self.inputs = {"agent_pos": (1, 0), "agent_vel": (1, 0), "landmark_pos": (0, 1)}
        self.val_names = [f"@N={n}" for n in self.val_agents]
        self.train_batches = FreshBatches(self, self._draw_update, steps_per_epoch)

    # -- the problem --------------------------------------------------------------------------
    def make_env(
        self, agents: int, num_envs: int, device: torch.device | str = "cpu"
    ) -> NavigationEnv:
        """``num_envs`` episodes of ``agents`` agents (and as many landmarks) of the task."""
        return NavigationEnv(
            num_envs, agents, arena=self.arena, max_steps=self.episode_steps(agents), device=device
        )

    def episode_steps(self, agents: int) -> int:
        """Steps per episode at ``agents`` agents (see ``max_steps``)."""
        if self.max_steps is not None:
            return self.max_steps
        arena = default_arena(agents) if self.arena is None else self.arena
        return math.ceil(25 * arena)

    def _draw_update(self, gen: torch.Generator) -> dict[str, int]:
        """What one update plays: a team size drawn uniformly, its episodes and their seed."""
        agents = self.train_agents[int(torch.randint(len(self.train_agents), (1,), generator=gen))]
        seed = int(torch.randint(2**62, (1,), generator=gen))
        return {"agents": agents, "num_envs": self.num_envs, "seed": seed}

    # -- the task contract ----------------------------------------------------------------------
    def metrics(self) -> Mapping[str, Metric]:
        names = ["return", "coverage", "collisions"]
        names += [f"{figure}_{name}" for figure in ("return", "coverage") for name in BASELINES]
        return {name: MeanMetric() for name in names}

    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError(
            "the navigation task has no supervised loss: NavigationPPO trains by playing episodes"
        )

    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError(
            "the navigation task is evaluated by playing episodes: use NavigationPPO"
        )

    # -- loaders ------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> list[DataLoader]:
        return [batch_loader([self._cell(n, self.val_instances, 10_000 + i)])
                for i, n in enumerate(self.val_agents)]  # fmt: skip

    def test_dataloader(self) -> list[DataLoader]:
        return [batch_loader([self._cell(n, self.test_instances, 20_000 + i)])
                for i, n in enumerate(self.val_agents)]  # fmt: skip

    def _cell(self, agents: int, episodes: int, salt: int) -> dict[str, Any]:
        """An evaluation size: ``episodes`` fixed instances (the env reset with ``seed``), and
        ``check_states`` random states of that size (positions as the env draws them, random
        velocities, a random step), on which ``EquivarianceCheck`` measures the policy.
        """
        gen = self.fixed_generator(salt)
        seed = int(torch.randint(2**62, (1,), generator=gen))
        env = self.make_env(agents, self.check_states)
        state = env.reset(int(torch.randint(2**62, (1,), generator=gen)))
        speed = torch.randn(self.check_states, agents, 2, generator=gen) * 0.5
        mask = torch.ones(self.check_states, agents, dtype=torch.bool)
        return {
            "agents": agents,
            "episodes": episodes,
            "seed": seed,
            "agent_pos": state.agent_pos,
            "agent_vel": speed,
            "landmark_pos": state.landmark_pos,
            "step": int(torch.randint(env.max_steps, (1,), generator=gen)),
            "mask": (mask, mask.clone()),
        }
