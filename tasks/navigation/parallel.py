"""Cooperative navigation as a PettingZoo ``ParallelEnv``, and states rebuilt from observations.

:class:`SpreadParallelEnv` plays one instance of :class:`~symlight.tasks.navigation.env.
NavigationEnv` with the interface of ``mpe2.simple_spread_v3.parallel_env``: agents
``agent_0, agent_1, ...``, ``Discrete(5)`` actions, float32 observations in mpe2's layout, and
truncation of every agent after ``max_steps`` steps. :func:`state_from_observations` turns such an
observation dict (from either environment) back into a :class:`~symlight.tasks.navigation.env.
NavState`, so a policy that acts on states plays both in a plain PettingZoo loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .env import ACTIONS, COMM_DIM, NavigationEnv, NavState, observations

__all__ = ["SpreadParallelEnv", "state_from_observations"]


class SpreadParallelEnv(ParallelEnv):
    """One instance of cooperative navigation with PettingZoo's parallel API, as mpe2's.

    Symmetry: relabelling the agents permutes their observations, actions and rewards alike (up
    to the order of the "other agents" inside each observation, which follows the labels), and
    relabelling the landmarks permutes the landmark block of every observation.

    ``agents``, ``landmarks``, ``arena``, ``max_steps`` and ``local_ratio`` are those of
    :class:`~symlight.tasks.navigation.env.NavigationEnv` (which the attribute ``env`` holds,
    in float64 on the CPU). Observations are float32 vectors of length ``4 + 2M + 4(N - 1)``;
    rewards are floats, mpe2's per-agent rewards; no agent terminates, all are truncated after
    ``max_steps`` steps. ``state()`` is the concatenation of all observations, as mpe2's.
    """

    metadata: dict[str, Any] = {
        "name": "symlight_spread_v0",
        "render_modes": [],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        agents: int = 3,
        landmarks: int | None = None,
        *,
        arena: float | None = None,
        max_steps: int | None = None,
        local_ratio: float = 0.5,
    ) -> None:
        self.env = NavigationEnv(
            1,
            agents,
            landmarks,
            arena=arena,
            max_steps=max_steps,
            local_ratio=local_ratio,
            dtype=torch.float64,
        )
        self.possible_agents = [f"agent_{i}" for i in range(agents)]
        self.agents: list[str] = []
        size = 4 + 2 * self.env.landmarks + (2 + COMM_DIM) * (agents - 1)
        box = spaces.Box(low=-np.inf, high=np.inf, shape=(size,), dtype=np.float32)
        self.observation_spaces = {a: box for a in self.possible_agents}
        self.action_spaces = {a: spaces.Discrete(ACTIONS) for a in self.possible_agents}

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        self.env.reset(seed)
        self.agents = self.possible_agents[:]
        return self._observations(), {a: {} for a in self.agents}

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict],
    ]:
        if not self.agents:
            raise RuntimeError("the episode is over (truncated): call reset() before step()")
        if set(actions) != set(self.agents):
            raise ValueError(
                f"actions are given for {sorted(actions)}; expected one for each of {self.agents}"
            )
        values = [np.asarray(actions[a]) for a in self.agents]
        if any(v.shape != () or v.dtype.kind not in "iu" for v in values):
            raise ValueError(f"actions must be integers in 0..{ACTIONS - 1} (Discrete({ACTIONS}))")
        chosen = torch.tensor([[int(v) for v in values]])
        _, rewards, done = self.env.step(chosen)
        obs = self._observations()
        agents = self.agents
        out_rewards = {a: float(r) for a, r in zip(agents, rewards[0].tolist())}
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, done)
        infos: dict[str, dict] = {a: {} for a in agents}
        if done:
            self.agents = []
        return obs, out_rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return observations(self.env.state)[0].flatten().numpy().astype(np.float32)

    def _observations(self) -> dict[str, np.ndarray]:
        obs = observations(self.env.state)[0].numpy().astype(np.float32)
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}


def state_from_observations(
    obs: Mapping[str, np.ndarray],
    landmarks: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> NavState:
    """The state (one instance, ``step = 0``) that an observation dict in mpe2's layout shows.

    ``obs`` maps each agent to its observation ``[vel, pos, landmark - pos for each landmark,
    other - pos for each other agent, communication]`` (mpe2's ``simple_spread`` or
    :class:`SpreadParallelEnv`); the agents are taken in the dict's order. Velocities and
    positions are read from each agent's own vector; each landmark's position is the mean over
    agents of ``pos + (landmark - pos)``. ``landmarks`` is the number of landmarks, deduced
    from the vectors' length when ``None``. The episode's step count is not observed: the
    returned state has ``step = 0``.
    """
    if not obs:
        raise ValueError("state_from_observations: the observation dict is empty (no live agent)")
    rows = [np.asarray(v, dtype=np.float64) for v in obs.values()]
    n, size = len(rows), rows[0].shape
    m2 = size[0] - 4 - (2 + COMM_DIM) * (n - 1) if len(size) == 1 else 0
    if any(r.shape != size for r in rows) or m2 < 2 or m2 % 2:
        raise ValueError(
            f"state_from_observations: observations of shapes {[r.shape for r in rows]} are not "
            f"mpe2 simple_spread observations of {n} agents (length 4 + 2M + 4(N - 1) each)"
        )
    rows = np.stack(rows)
    if landmarks is not None and landmarks != m2 // 2:
        raise ValueError(
            f"state_from_observations: the observations show {m2 // 2} landmarks, not {landmarks}"
        )
    vel, pos = rows[:, 0:2], rows[:, 2:4]
    marks = (rows[:, 4 : 4 + m2].reshape(n, m2 // 2, 2) + pos[:, None, :]).mean(axis=0)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=dtype, device=device)[None]

    return NavState(tensor(pos), tensor(vel), tensor(marks), 0)
