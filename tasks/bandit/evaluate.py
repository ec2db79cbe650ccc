"""Fast evaluation of batched bandit policies on fixed instances.

``rollout(policy, means, horizon)`` plays ``B`` bandit instances with fixed arm means at once with
tensor operations on the device of ``means``: thousands of instances x 500 pulls take seconds for
the classic policies. ``regret`` is the RL² table's measure (``n·k/(k+1)`` minus the total reward,
``n·k/(k+1)`` being what an oracle expects under the uniform prior); ``pseudo_regret`` is
``n·max p − Σ_t p_{a_t}``, the regret against the best arm of each instance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["Policy", "batch_observation", "pseudo_regret", "regret", "rollout", "summarize"]

Policy = Callable[..., Tensor]
"""``policy(obs, generator=None) -> (B,) long``; ``obs`` has ``pulls`` (B, k) int64,
``successes`` (B, k) int64 and ``steps_left`` (B,) int64."""


def batch_observation(
    obs: Mapping[str, Any], device: torch.device | str | None = None
) -> dict[str, Tensor]:
    """Turn an observation into the batched form policies take: int64 tensors (B, k) and (B,).

    Accepts the single environment's observation (NumPy, (k,) and ()), which becomes a batch of
    one, and batched ones (NumPy from ``SyncVectorEnv`` or tensors). So a batched policy plays in
    a plain gymnasium loop: ``action = int(policy(batch_observation(obs))[0])``.
    """
    keys = ("pulls", "successes", "steps_left")
    out = {key: torch.as_tensor(obs[key], dtype=torch.int64, device=device) for key in keys}
    if out["pulls"].dim() == 1:
        out = {key: value.unsqueeze(0) for key, value in out.items()}
    return out


@torch.no_grad()
def rollout(
    policy: Policy,
    means: Tensor,
    horizon: int,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Play ``policy`` for ``horizon`` pulls on each row of ``means`` (B, k), all rows at once.

    At step ``t`` the policy sees ``pulls``, ``successes`` (B, k) int64 and ``steps_left`` (B,)
    int64 (``horizon - t``), as the batched environment gives them, and is called as
    ``policy(obs, generator=generator)``; it returns (B,) arm indices. The reward of arm ``a`` is
    ``rand() < means[b, a]`` with ``rand`` drawn from ``generator`` (on ``means.device``), so a
    seeded generator makes the rollout reproducible. Runs under ``torch.no_grad()``; the
    observation tensors passed to the policy are never modified afterwards, so it may keep them.

    Returns a dict of tensors on ``means.device``:

    - ``rewards`` (B, horizon) float: the reward of each pull;
    - ``actions`` (B, horizon) long: the arm pulled at each step;
    - ``pseudo_regret`` (B, horizon) float: ``max_a p_a − p_{a_t}`` per step (cumulative sum: the
      regret curve over time);
    - ``total_reward`` (B,) float: the sum of ``rewards``.
    """
    if means.dim() != 2:
        raise ValueError(f"means must have shape (B, k), got {tuple(means.shape)}")
    if horizon < 1:
        raise ValueError(f"horizon={horizon}: must be >= 1")
    b, k = means.shape
    device = means.device
    dtype = means.dtype if means.dtype.is_floating_point else torch.get_default_dtype()
    means = means.to(dtype)
    pulls = torch.zeros(b, k, dtype=torch.int64, device=device)
    successes = torch.zeros_like(pulls)
    rewards = torch.empty(b, horizon, dtype=dtype, device=device)
    actions = torch.empty(b, horizon, dtype=torch.int64, device=device)
    chosen_means = torch.empty(b, horizon, dtype=dtype, device=device)
    for t in range(horizon):
        steps_left = torch.full((b,), horizon - t, dtype=torch.int64, device=device)
        obs = {"pulls": pulls, "successes": successes, "steps_left": steps_left}
        a = policy(obs, generator=generator)
        _check_action(a, b, k, t)
        p = means.gather(1, a[:, None])
        r = torch.rand(b, 1, generator=generator, device=device, dtype=dtype) < p
        pulls = pulls.scatter_add(1, a[:, None], torch.ones_like(a)[:, None])
        successes = successes.scatter_add(1, a[:, None], r.long())
        rewards[:, t] = r[:, 0]
        actions[:, t] = a
        chosen_means[:, t] = p[:, 0]
    return {
        "rewards": rewards,
        "actions": actions,
        "pseudo_regret": means.max(dim=1, keepdim=True).values - chosen_means,
        "total_reward": rewards.sum(dim=1),
    }


def _check_action(a: Tensor, b: int, k: int, t: int) -> None:
    if a.shape != (b,) or a.dtype != torch.int64:
        raise ValueError(
            f"the policy returned {a.dtype} {tuple(a.shape)} at step {t}; expected int64 ({b},)"
        )


def regret(total_reward: Tensor | float, k: int, horizon: int) -> Tensor | float:
    """The RL² table's regret: ``horizon·k/(k+1) − total_reward`` (uniform prior on the means)."""
    return horizon * k / (k + 1) - total_reward


def pseudo_regret(means: Tensor, actions: Tensor) -> Tensor:
    """``Σ_t (max_a p_a − p_{a_t})`` per instance: means (B, k), actions (B, n) -> (B,)."""
    chosen = means.gather(1, actions)
    return (means.max(dim=1, keepdim=True).values - chosen).sum(dim=1)


def summarize(result: Mapping[str, Tensor], k: int, horizon: int) -> dict[str, float]:
    """Mean total reward, RL² regret and pseudo-regret, each with its standard error."""
    total = result["total_reward"].double()
    pseudo = result["pseudo_regret"].double().sum(dim=1)
    n = total.numel()

    def se(x: Tensor) -> float:
        return float(x.std() / n**0.5) if n > 1 else float("nan")

    return {
        "reward": float(total.mean()),
        "reward_se": se(total),
        "regret": float(regret(total.mean(), k, horizon)),
        "regret_se": se(total),
        "pseudo_regret": float(pseudo.mean()),
        "pseudo_regret_se": se(pseudo),
    }
