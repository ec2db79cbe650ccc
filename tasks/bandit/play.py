"""Playing a batched policy on a vector environment of bandits: the one loop that training,
validation, test, the classic policies and the benchmarks share.

:func:`make_env` builds the vector environment: ``symlight/BernoulliBandit-v0`` is the torch
:class:`~.env.BernoulliBanditVectorEnv`; any other registered id whose observations follow the
contract of :func:`~.env.observation_space` (``pulls`` and ``successes`` of shape ``(k,)``,
``steps_left``), and which takes ``k`` and ``horizon`` keyword arguments, is vectorised with
``gymnasium.make_vec`` and its NumPy arrays become tensors. :func:`play` resets it with a seed
(instance ``i`` seeded ``seed + i``, gymnasium's convention, so every policy played with the same
seed meets the same instances), plays one episode of every instance, and returns what the
environment returned: observations, actions and rewards. It never reads ``info``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from torch import Tensor

from .env import ENV_ID, BernoulliBanditVectorEnv, observation_space
from .prior import Prior

__all__ = ["Episodes", "Policy", "batch_observation", "make_env", "play", "summarize"]

Policy = Callable[..., Tensor]
"""``policy(obs, generator=None) -> (B,) int64``; ``obs`` has ``pulls`` (B, k) int64,
``successes`` (B, k) int64 and ``steps_left`` (B,) int64."""

KEYS = ("pulls", "successes", "steps_left")


def batch_observation(
    obs: Mapping[str, Any], device: torch.device | str | None = None
) -> dict[str, Tensor]:
    """An observation in the batched form policies take: int64 tensors (B, k) and (B,).

    Accepts the single environment's observation (NumPy, (k,) and ()), which becomes a batch of
    one, and batched ones (NumPy from ``SyncVectorEnv`` or tensors). So a batched policy plays in
    a plain gymnasium loop: ``action = int(policy(batch_observation(obs))[0])``.
    """
    out = {key: torch.as_tensor(obs[key], dtype=torch.int64, device=device) for key in KEYS}
    if out["pulls"].dim() == 1:
        out = {key: value.unsqueeze(0) for key, value in out.items()}
    return out


class _TorchArrays(VectorWrapper):
    """A NumPy vector env seen through tensors: observations and rewards on ``device``."""

    def __init__(self, env: VectorEnv, device: torch.device) -> None:
        super().__init__(env)
        self.device = device

    def reset(self, **kwargs: Any) -> tuple[dict[str, Tensor], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return batch_observation(obs, self.device), info

    def step(self, actions: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions.cpu().numpy())
        flags = [
            torch.as_tensor(np.asarray(f), device=self.device) for f in (terminated, truncated)
        ]
        reward = torch.as_tensor(np.asarray(reward), dtype=torch.float32, device=self.device)
        return batch_observation(obs, self.device), reward, *flags, info


def make_env(
    env_id: str,
    num_envs: int,
    k: int,
    horizon: int,
    prior: Prior,
    device: torch.device | str = "cpu",
    **kwargs: Any,
) -> VectorEnv:
    """``num_envs`` bandits of ``k`` arms and ``horizon`` pulls, stepped together.

    ``symlight/BernoulliBandit-v0`` draws its means from ``prior`` and plays on ``device``; any
    other id gets ``k``, ``horizon`` and ``kwargs`` (its own prior is its business), and a
    ValueError names it when its observations break the contract.
    """
    if env_id == ENV_ID:
        return BernoulliBanditVectorEnv(num_envs, k, horizon, prior=prior, device=device, **kwargs)
    try:
        env = gymnasium.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="sync", k=k, horizon=horizon, **kwargs
        )
    except TypeError as error:  # a constructor without k= or horizon=
        raise ValueError(
            f"{env_id} cannot be built as a bandit of k arms and a horizon: {error}"
        ) from None
    expected = observation_space(k, horizon)
    space = env.single_observation_space
    if not isinstance(space, spaces.Dict) or any(
        key not in space.spaces or space[key].shape != expected[key].shape for key in KEYS
    ):
        env.close()
        raise ValueError(
            f"{env_id} observes {space}; a bandit policy needs a Dict with pulls and successes of "
            f"shape ({k},) and steps_left of shape () (symlight.tasks.bandit.observation_space)"
        )
    return _TorchArrays(env, torch.device(device))


@dataclass
class Episodes:
    """One episode of each of ``B`` instances, ``T`` pulls, as the environment returned it.

    ``pulls``, ``successes`` (T, B, k) and ``steps_left`` (T, B): the observation before each
    pull; ``actions`` (T, B) int64; ``rewards`` (T, B) float32.
    """

    pulls: Tensor
    successes: Tensor
    steps_left: Tensor
    actions: Tensor
    rewards: Tensor

    def observation(self, steps: Tensor | slice) -> dict[str, Tensor]:
        """The observations before the pulls ``steps`` (an index or a slice of dim 0)."""
        return {"pulls": self.pulls[steps], "successes": self.successes[steps],
                "steps_left": self.steps_left[steps]}  # fmt: skip


@torch.no_grad()
def play(
    policy: Policy,
    env: VectorEnv,
    seed: int,
    generator: torch.Generator | None = None,
    options: dict[str, Any] | None = None,
) -> Episodes:
    """Reset ``env`` with ``seed`` (and ``options``, e.g. ``{"means": p}`` to replay fixed means
    on ``symlight/BernoulliBandit-v0``) and play one whole episode of each instance with ``policy``.

    The policy is called as ``policy(obs, generator)`` on the batched observation. Episodes must
    last ``steps_left`` pulls and end truncated (a ValueError says otherwise). Afterwards the env
    still holds the episodes played (it resets them at its next step), so a simulator's hidden
    state, such as :attr:`~.env.BernoulliBanditVectorEnv.means`, can be read for evaluation.
    """
    obs, _ = env.reset(seed=seed, options=options)
    horizon = int(obs["steps_left"].max())
    (b, k), device = obs["pulls"].shape, obs["pulls"].device
    pulls = torch.empty(horizon, b, k, dtype=torch.int64, device=device)
    successes, steps_left = torch.empty_like(pulls), pulls.new_empty(horizon, b)
    actions, rewards = pulls.new_empty(horizon, b), torch.empty(horizon, b, device=device)
    ended_early = torch.zeros(b, dtype=torch.bool, device=device)
    for t in range(horizon):
        pulls[t], successes[t], steps_left[t] = obs["pulls"], obs["successes"], obs["steps_left"]
        actions[t] = policy(obs, generator)
        obs, rewards[t], terminated, truncated, _ = env.step(actions[t])
        ended = terminated | truncated
        if t < horizon - 1:
            ended_early |= ended
    if (
        bool(ended_early.any())
        or not bool(ended.all())
        or not bool((steps_left[0] == horizon).all())
    ):
        raise ValueError(
            f"every episode must last its {horizon} pulls (steps_left at reset) and then end"
        )
    return Episodes(pulls, successes, steps_left, actions, rewards)


def summarize(episodes: Episodes, prior: Prior, means: Tensor | None = None) -> dict[str, float]:
    """Mean total reward and regret ``n·E[max p] − total reward`` (the RL² table's measure, with
    ``E[max p]`` under ``prior``), each with its standard error; with the instances' ``means``
    (B, k), which only a simulator knows, also the pseudo-regret ``Σ_t (max p − p_{a_t})``.
    """
    horizon, count, k = episodes.pulls.shape
    total = episodes.rewards.double().sum(0)

    def se(x: Tensor) -> float:
        return float(x.std() / count**0.5) if count > 1 else float("nan")

    out = {
        "reward": float(total.mean()),
        "reward_se": se(total),
        "regret": horizon * prior.expected_best(k) - float(total.mean()),
        "regret_se": se(total),
    }
    if means is not None:
        pseudo = pseudo_regret(means, episodes.actions).sum(0)
        out.update(pseudo_regret=float(pseudo.mean()), pseudo_regret_se=se(pseudo))
    return out


def pseudo_regret(means: Tensor, actions: Tensor) -> Tensor:
    """``max p − p_{a_t}`` of each pull: means (B, k), actions (T, B) -> (T, B) float64."""
    means = means.to(actions.device, torch.float64)
    return means.max(1).values - means.gather(1, actions.T).T
