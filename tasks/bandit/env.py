"""The Bernoulli multi-armed bandit as a gymnasium environment, single and batched.

Both environments draw every random number from the counter-based stream of
:mod:`symlight.tasks.bandit._rng`, so instance ``i`` of :class:`BernoulliBanditVectorEnv` reset
with ``seed=s`` plays exactly the episodes of :class:`BernoulliBanditEnv` reset with
``seed=s + i`` (the convention of gymnasium's ``SyncVectorEnv``), given the same actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from . import _rng
from .prior import UNIFORM, Prior

__all__ = ["ENV_ID", "BernoulliBanditEnv", "BernoulliBanditVectorEnv", "observation_space"]

ENV_ID = "symlight/BernoulliBandit-v0"
"""The registered id: ``gymnasium.make`` builds :class:`BernoulliBanditEnv`, ``make_vec``
:class:`BernoulliBanditVectorEnv`."""


def _check_args(k: int, horizon: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r}: the number of arms must be an integer >= 1")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon={horizon!r}: the number of pulls must be an integer >= 1")


def observation_space(k: int, horizon: int) -> spaces.Dict:
    """The observation of one bandit: per-arm ``pulls`` and ``successes``, and ``steps_left``.

    The pulls made so far are ``pulls.sum()``; the horizon is ``pulls.sum() + steps_left``.
    """
    counts = spaces.Box(low=0, high=horizon, shape=(k,), dtype=np.int64)
    return spaces.Dict(
        {
            "pulls": counts,
            "successes": spaces.Box(low=0, high=horizon, shape=(k,), dtype=np.int64),
            "steps_left": spaces.Box(low=0, high=horizon, shape=(), dtype=np.int64),
        }
    )


def _thresholds_from_means(means: Any, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(means.cpu() if isinstance(means, Tensor) else means, dtype=np.float64)
    if m.shape != shape:
        raise ValueError(f"options['means'] has shape {m.shape}; expected {shape}")
    if not np.all((m >= 0) & (m <= 1)):
        raise ValueError("options['means'] must lie in [0, 1]")
    return np.rint(m * _rng.SCALE).astype(np.int64)


class BernoulliBanditEnv(gym.Env):
    """A k-armed Bernoulli bandit with a fixed number of pulls.

    Symmetry: relabelling the arms permutes ``pulls``, ``successes`` and the action alike, so the
    optimal policy is equivariant over arms.

    Each episode draws arm means ``p_1..p_k`` i.i.d. from ``prior`` (a
    :class:`~symlight.tasks.bandit.prior.Prior` or a pair ``(α, β)``: Beta(α, β); U[0, 1] by
    default). Action ``a`` in ``Discrete(k)`` pays 1 with probability ``p_a``, else 0. After
    ``horizon`` pulls the episode is truncated (never terminated).

    Observation (:func:`observation_space`): ``pulls`` (k,) int64, ``successes`` (k,) int64,
    ``steps_left`` () int64. ``info["means"]`` holds the arm means (float64, the exact success
    probabilities), hidden state for measuring regret in simulation: a policy learns without it.
    ``reset(options={"means": p})`` plays fixed means.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        k: int = 10,
        horizon: int = 100,
        prior: Prior | tuple[float, float] = UNIFORM,
    ) -> None:
        _check_args(k, horizon)
        self.k, self.horizon, self.prior = int(k), int(horizon), Prior.of(prior)
        self.action_space = spaces.Discrete(self.k)
        self.observation_space = observation_space(self.k, self.horizon)
        self._key: int | None = None
        self._episode = 0
        self._t = self.horizon  # no episode yet: stepping asks for a reset

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._key, self._episode = (
                _rng.seed_key(seed & _rng.MASK32, (seed >> 32) & _rng.MASK32),
                0,
            )
        elif self._key is None:
            s = int(self.np_random.integers(2**63))
            self._key, self._episode = _rng.seed_key(s & _rng.MASK32, s >> 32), 0
        else:
            self._episode = (self._episode + 1) & _rng.MASK32
        means_key, self._reward_key = _rng.episode_keys(self._key, self._episode)
        if options is not None and "means" in options:
            self._thresholds = _thresholds_from_means(options["means"], (self.k,))
        else:
            u = _rng.stream(np.int64(means_key), np.arange(self.k, dtype=np.int64))
            self._thresholds = self.prior.thresholds(u)
        self._means = self._thresholds / _rng.SCALE
        self._thr = self._thresholds.tolist()
        self._pulls = np.zeros(self.k, dtype=np.int64)
        self._successes = np.zeros(self.k, dtype=np.int64)
        self._t = 0
        return self._obs(), {"means": self._means.copy()}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        a = self._check_action(action)
        if self._key is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.horizon:
            raise RuntimeError("the episode is over (truncated): call reset() before step()")
        success = _rng.stream(self._reward_key, self._t) < self._thr[a]
        self._pulls[a] += 1
        self._successes[a] += success
        self._t += 1
        truncated = self._t >= self.horizon
        return self._obs(), float(success), False, truncated, {"means": self._means.copy()}

    def _check_action(self, action: Any) -> int:
        a = np.asarray(action)
        if a.shape != () or not np.issubdtype(a.dtype, np.integer) or not 0 <= a < self.k:
            raise ValueError(
                f"action {action!r} is outside Discrete({self.k}): pass one integer arm index "
                f"in [0, {self.k})"
            )
        return int(a)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "pulls": self._pulls.copy(),
            "successes": self._successes.copy(),
            "steps_left": np.array(self.horizon - self._t, dtype=np.int64),
        }


class BernoulliBanditVectorEnv(VectorEnv):
    """``num_envs`` Bernoulli bandits stepped together with torch tensor operations on ``device``.

    Symmetry: as :class:`BernoulliBanditEnv`, per instance: permuting one instance's arms permutes
    its ``pulls``, ``successes``, ``means`` and action alike.

    Observations are dicts of torch tensors: ``pulls`` (N, k) int64, ``successes`` (N, k) int64,
    ``steps_left`` (N,) int64; rewards are (N,) float32; terminations and truncations (N,) bool;
    ``info["means"]`` is (N, k) float64, the means of the episode each instance is playing now.
    Actions are an (N,) integer tensor or array. The returned tensors are never modified later.

    Autoreset (``autoreset_mode``, also in ``metadata["autoreset_mode"]``), as gymnasium's
    ``AutoresetMode``:

    - ``NEXT_STEP`` (default): the step after an instance is truncated ignores its action and
      returns its first observation of a new episode, with reward 0 and both flags False;
    - ``SAME_STEP``: the truncating step returns its reward and flags but already the first
      observation of the next episode; the last observation of the finished episode is in
      ``info["final_obs"]`` (a dict of (N, ...) tensors, valid where ``info["_final_obs"]``) and
      its means in ``info["final_info"]["means"]``;
    - ``DISABLED``: stepping a truncated instance raises; reset it with
      ``reset(options={"reset_mask": m})``.

    With one horizon for all instances and a common reset, all instances truncate on the same
    step.

    Seeding as ``SyncVectorEnv``: ``reset(seed=s)`` seeds instance ``i`` with ``s + i`` and
    then instance ``i`` plays exactly the episodes of ``BernoulliBanditEnv`` reset with
    ``seed=s + i``; ``reset(seed=[s_0, ...])`` gives each instance its own seed.
    ``reset(options={"means": p})`` plays fixed means ``p`` (N, k); ``options={"reset_mask": m}``
    resets only the instances where the (N,) bool ``m`` is True.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        k: int = 10,
        horizon: int = 100,
        prior: Prior | tuple[float, float] = UNIFORM,
        device: str | torch.device = "cpu",
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    ) -> None:
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            choices = ", ".join(m.value for m in AutoresetMode)
            raise ValueError(
                f"autoreset_mode={autoreset_mode!r}: choose one of {choices}"
            ) from None
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r}: must be an integer >= 1")
        _check_args(k, horizon)
        self.num_envs, self.k, self.horizon = num_envs, int(k), int(horizon)
        self.prior = Prior.of(prior)
        self.device = torch.device(device)
        self.single_observation_space = observation_space(self.k, self.horizon)
        self.single_action_space = spaces.Discrete(self.k)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._key: Tensor | None = None
        self._arms = torch.arange(self.k, device=self.device)

    # -- reset -------------------------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        n = self.num_envs
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = torch.ones(n, dtype=torch.bool, device=self.device)
        else:
            mask = torch.as_tensor(mask, device=self.device)
            if mask.shape != (n,) or mask.dtype != torch.bool:
                raise ValueError(f"options['reset_mask'] must be a ({n},) bool tensor or array")
        if self._key is None and not bool(mask.all()):
            raise RuntimeError("the first reset() must reset every instance (no reset_mask)")
        if isinstance(seed, (int, np.integer)):
            seeds: list[int | None] = [int(seed) + i for i in range(n)]
        elif seed is not None:
            seeds = [None if s is None else int(s) for s in seed]
            if len(seeds) != n:
                raise ValueError(f"reset got {len(seeds)} seeds for num_envs={n}")
        else:
            seeds = [None] * n
        if any(s is not None and s < 0 for s in seeds):
            raise ValueError(f"seeds must be non-negative integers, got {seed!r}")
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))  # seeds the vector env's own generator too
        if self._key is None:
            # The first reset seeds every unseeded instance from the vector env's own generator.
            drawn = self.np_random.integers(2**63, size=n).tolist()
            seeds = [d if s is None else s for s, d in zip(seeds, drawn)]
            zeros = torch.zeros(n, dtype=torch.int64, device=self.device)
            self._key, self._episode = zeros.clone(), zeros.clone()
            self._autoreset = torch.zeros(n, dtype=torch.bool, device=self.device)
        # As the single env: a seed starts its stream afresh, no seed plays the next episode.
        seeded = torch.tensor([s is not None for s in seeds], device=self.device) & mask
        if bool(seeded.any()):
            lo, hi = _rng.seed_words([0 if s is None else s for s in seeds])
            key = _rng.seed_key(torch.from_numpy(lo), torch.from_numpy(hi)).to(self.device)
            self._key = torch.where(seeded, key, self._key)
        next_episode = (self._episode + 1) & _rng.MASK32
        self._episode = torch.where(seeded, 0, torch.where(mask, next_episode, self._episode))
        self._new_episodes(mask, options.get("means"))
        self._autoreset = self._autoreset & ~mask
        return self._obs(), {"means": self._means}

    def _new_episodes(self, mask: Tensor, means: Any = None) -> None:
        """Start a new episode (next episode number, fresh means, zero counts) where ``mask``."""
        means_key, reward_key = _rng.episode_keys(self._key, self._episode)
        if means is not None:
            thr = torch.from_numpy(_thresholds_from_means(means, (self.num_envs, self.k)))
            thr = thr.to(self.device)
        else:
            thr = _rng.stream(means_key[:, None], self._arms[None, :])
            if not self.prior.uniform:
                thr = torch.from_numpy(self.prior.thresholds(thr.cpu().numpy())).to(self.device)
        first = not hasattr(self, "_thr")
        m2 = mask[:, None]
        if first:
            self._reward_key, self._thr = reward_key, thr
            self._pulls = torch.zeros(self.num_envs, self.k, dtype=torch.int64, device=self.device)
            self._successes = self._pulls.clone()
            self._t = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        else:
            self._reward_key = torch.where(mask, reward_key, self._reward_key)
            self._thr = torch.where(m2, thr, self._thr)
            self._pulls = torch.where(m2, 0, self._pulls)
            self._successes = torch.where(m2, 0, self._successes)
            self._t = torch.where(mask, 0, self._t)
        self._means = self._thr.to(torch.float64) / _rng.SCALE

    # -- step --------------------------------------------------------------------------------
    def step(
        self, actions: Tensor | np.ndarray | Sequence[int]
    ) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor, dict[str, Any]]:
        if self._key is None:
            raise RuntimeError("call reset() before step()")
        a = self._check_actions(actions)
        resetting = self._autoreset
        if bool(resetting.any()):
            if self.autoreset_mode == AutoresetMode.DISABLED:
                i = int(resetting.nonzero()[0, 0])
                raise RuntimeError(
                    f"instance {i} is truncated and autoreset is disabled: reset it with "
                    "reset(options={'reset_mask': mask}) before stepping it"
                )
            self._next_episodes(resetting)
        active = ~resetting
        u = _rng.stream(self._reward_key, self._t)
        success = (u < self._thr.gather(1, a[:, None]).squeeze(1)) & active
        self._pulls = self._pulls.scatter_add(1, a[:, None], active.long()[:, None])
        self._successes = self._successes.scatter_add(1, a[:, None], success.long()[:, None])
        self._t = self._t + active.long()
        truncated = active & (self._t >= self.horizon)
        terminated = torch.zeros_like(truncated)
        info: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            if bool(truncated.any()):
                info["final_obs"], info["_final_obs"] = self._obs(), truncated
                info["final_info"] = {"means": self._means, "_means": truncated}
                info["_final_info"] = truncated
                self._next_episodes(truncated)
        else:
            self._autoreset = truncated
        info["means"] = self._means
        return self._obs(), success.float(), terminated, truncated, info

    def _next_episodes(self, mask: Tensor) -> None:
        self._episode = torch.where(mask, (self._episode + 1) & _rng.MASK32, self._episode)
        self._new_episodes(mask)

    def _check_actions(self, actions: Tensor | np.ndarray | Sequence[int]) -> Tensor:
        a = torch.as_tensor(actions, device=self.device)
        if a.shape != (self.num_envs,) or a.dtype.is_floating_point or a.dtype == torch.bool:
            raise ValueError(
                f"actions must be an integer tensor of shape ({self.num_envs},), got "
                f"{a.dtype} {tuple(a.shape)}"
            )
        a = a.long()
        bad = (a < 0) | (a >= self.k)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"action {int(a[i])} of instance {i} is outside Discrete({self.k}): pass arm "
                f"indices in [0, {self.k})"
            )
        return a

    def _obs(self) -> dict[str, Tensor]:
        return {
            "pulls": self._pulls,
            "successes": self._successes,
            "steps_left": self.horizon - self._t,
        }

    @property
    def means(self) -> Tensor:
        """The arm means (N, k) float64 of the episodes being played."""
        return self._means
