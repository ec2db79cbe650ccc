"""Play a navigation policy on fixed instances and measure it: team return, coverage, collisions.

Every policy (learned, baseline) is a callable ``policy(state: NavState) -> (E, N)`` integer
actions in 0..4. :func:`play` plays it on ``NavigationEnv(episodes, agents, ...)`` reset with a
seed, so every policy given the same seed meets the same instances; validation, the baselines and
``benchmarks/navigation_table.py`` all measure through it. Per episode:

- ``return``: the **team return**, the sum over the episode's steps of the mean over agents of
  the per-agent rewards :meth:`NavigationEnv.step` returns (mpe2's convention,
  ``local_ratio = 0.5``): ``sum_t (0.5 * G_t - 0.5 * mean_i c_it)``, with ``G_t`` minus the sum
  over landmarks of the distance to the nearest agent and ``c_it`` the number of other agents
  agent ``i`` overlaps, both after step ``t``. At ``N = 3`` it is the mean over agents of the
  returns mpe2's ``simple_spread_v3`` gives each agent. The conversions to other papers'
  conventions are in ``docs/navigation.md``.
- ``coverage``: the fraction of landmarks with an agent within 0.1 after the last step.
- ``collisions``: overlapping pairs counted once per agent in them (``c_it``), per agent-step:
  ``mean_{t, i} c_it``.

Symmetry: the three figures are invariant to permuting the agents and to permuting the landmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from .env import NavigationEnv, NavState, collisions, coverage

__all__ = ["METRICS", "Policy", "play", "summary"]

Policy = Callable[[NavState], Tensor]
"""A batched policy: ``policy(state) -> (E, N)`` integer actions in 0..4."""

METRICS = ("return", "coverage", "collisions")
"""The per-episode figures :func:`play` returns, each of shape (E,)."""


@torch.no_grad()
def play(
    policy: Policy,
    agents: int,
    episodes: int,
    seed: int,
    *,
    arena: float | None = None,
    max_steps: int | None = None,
    device: str | torch.device | None = None,
    trajectory: bool = False,
) -> dict[str, Tensor]:
    """Play ``policy`` on ``episodes`` instances with ``agents`` agents (and as many landmarks).

    The instances are ``NavigationEnv(episodes, agents, arena=arena, max_steps=max_steps,
    device=device).reset(seed)``: the same seed gives every policy the same instances. Returns
    :data:`METRICS` as ``(E,)`` float tensors on ``device`` (see the module's docstring); with
    ``trajectory=True`` also ``agent_pos`` ``(T + 1, E, N, 2)``, the agents' positions from the
    start to the last step, and ``landmark_pos`` ``(E, M, 2)``.
    """
    env = NavigationEnv(episodes, agents, arena=arena, max_steps=max_steps, device=device)
    state = env.reset(seed)
    team_return = torch.zeros(episodes, device=env.device, dtype=env.dtype)
    overlaps = torch.zeros_like(team_return)
    path = [state.agent_pos]
    done = False
    while not done:
        state, rewards, done = env.step(policy(state))
        team_return += rewards.mean(dim=1)
        overlaps += collisions(state).mean(dim=1)
        if trajectory:
            path.append(state.agent_pos)
    result = {
        "return": team_return,
        "coverage": coverage(state),
        "collisions": overlaps / env.max_steps,
    }
    if trajectory:
        result["agent_pos"] = torch.stack(path)
        result["landmark_pos"] = state.landmark_pos
    return result


def summary(metrics: Mapping[str, Tensor]) -> dict[str, float]:
    """The mean and standard error over episodes of each of :data:`METRICS` in ``metrics``.

    ``{"return": mean, "return_se": standard error, ...}``; the standard error is the sample
    standard deviation over the square root of the number of episodes (0 for one episode).
    """
    out = {}
    for name in METRICS:
        if name not in metrics:
            continue
        values = metrics[name].double()
        out[name] = float(values.mean())
        spread = float(values.std()) if values.numel() > 1 else 0.0
        out[f"{name}_se"] = spread / values.numel() ** 0.5
    return out
