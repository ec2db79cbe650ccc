"""``load_policy``: a trained navigation policy that acts on an mpe2 ``simple_spread`` observation dict.

A policy of this package acts on a :class:`~symlight.tasks.navigation.env.NavState`;
:class:`ObservationPolicy` rebuilds that state from the observation dict of
``mpe2.simple_spread_v3.parallel_env`` (or of
:class:`~symlight.tasks.navigation.parallel.SpreadParallelEnv`) with
:func:`~symlight.tasks.navigation.parallel.state_from_observations`, so any policy, learned or
baseline, plays the reference environment in a plain PettingZoo loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..base import policy_checkpoint
from .env import DT, NavState
from .evaluation import Policy
from .parallel import state_from_observations
from .training import CHECKPOINT_KEY, NavigationPPO

__all__ = ["ObservationPolicy", "load_checkpoint_module", "load_policy"]


class ObservationPolicy:
    """A batched ``policy(state) -> (1, N) actions`` as ``policy(obs) -> {agent: action}``.

    ``obs`` is one step's observation dict of ``mpe2.simple_spread_v3.parallel_env`` (any number
    of agents and landmarks, the agents in the dict's order); the answer holds an ``int`` in
    0..4 for every agent of ``obs``.

    The state's step number (which a learned policy reads) is not in the observations: the
    callable counts the steps of an episode itself. It knows that a new episode has begun when
    the agents (their names) change or their positions are not where the previous observation's
    velocities take them (mpe2 moves each agent by ``dt`` times its velocity before updating
    the velocity, so within an episode they always are): so the same callable plays episode
    after episode without being told; ``step`` holds the step number of the last observation.
    Symmetry: as ``policy``'s; relabelling the agents of ``obs`` relabels the actions.
    """

    def __init__(self, policy: Policy, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:  # fmt: skip
        self.policy, self.device, self.dtype = policy, torch.device(device), dtype
        self._last: tuple[tuple[str, ...], np.ndarray] | None = None  # agents, next positions
        self.step = 0

    def state(self, obs: Mapping[str, Any]) -> NavState:
        """The state ``obs`` shows, with the step number counted in this episode."""
        agents = tuple(obs)
        vectors = np.stack([np.asarray(obs[a], dtype=np.float64) for a in agents]) if obs else None
        if vectors is not None and vectors.ndim == 2 and vectors.shape[1] >= 4:
            pos, vel = vectors[:, 2:4], vectors[:, 0:2]
            same = (
                self._last is not None
                and self._last[0] == agents
                and np.allclose(pos, self._last[1], rtol=0.0, atol=1e-4)
            )
            self.step = self.step + 1 if same else 0
            self._last = (agents, pos + DT * vel)
        state = state_from_observations(obs, dtype=self.dtype, device=self.device)
        return NavState(state.agent_pos, state.agent_vel, state.landmark_pos, self.step)

    def __call__(self, obs: Mapping[str, Any]) -> dict[str, int]:
        with torch.no_grad():
            actions = self.policy(self.state(obs))[0].tolist()
        return {agent: int(a) for agent, a in zip(obs, actions)}


def load_checkpoint_module(
    checkpoint_path: str | Path, device: str | torch.device = "cpu"
) -> NavigationPPO:
    """The :class:`NavigationPPO` of a checkpoint, in eval mode.

    Raises a ValueError naming the checkpoint when it does not hold a navigation policy. The
    checkpoint is unpickled in full (it records how to rebuild its network): load only files you
    trust.
    """
    path = Path(checkpoint_path)
    policy_checkpoint(path, CHECKPOINT_KEY, "navigation policy", "NavigationPPO", "navigation.yaml")
    module = NavigationPPO.load_from_checkpoint(path, map_location=device, weights_only=False)
    module.eval()
    return module


def load_policy(
    checkpoint_path: str | Path, greedy: bool = True, device: str | torch.device = "cpu"
) -> ObservationPolicy:
    """Load a :class:`NavigationPPO` checkpoint as ``policy(obs) -> {agent: action}``.

    ``obs`` is an observation dict of ``mpe2.simple_spread_v3.parallel_env`` at any number of
    agents (``N``), which the policy acts for all at once:

        from mpe2 import simple_spread_v3

        policy = load_policy("lightning_logs/navigation/version_0/checkpoints/last.ckpt")
        env = simple_spread_v3.parallel_env(N=3)
        obs, infos = env.reset(seed=0)
        while env.agents:
            obs, rewards, terminations, truncations, infos = env.step(policy(obs))

    ``greedy`` takes each agent's most likely action; otherwise actions are drawn from the
    policy (from a generator seeded with 0). Raises a ValueError for a checkpoint that is not a
    navigation policy (see :class:`ObservationPolicy` for how it follows the episode's step).
    """
    module = load_checkpoint_module(checkpoint_path, device)
    generator = torch.Generator(device=device).manual_seed(0)
    dtype = next(module.parameters()).dtype
    return ObservationPolicy(lambda state: module.act(state, greedy, generator), device, dtype)
