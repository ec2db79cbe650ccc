"""The exact Bayes-optimal policy of the Bernoulli bandit, by dynamic programming.

Under a Beta(α, β) prior (:class:`~symlight.tasks.bandit.prior.Prior`; uniform: α = β = 1), an arm
with ``s`` successes and ``f`` failures pays next with probability ``(s + α) / (s + f + α + β)``,
and the state of the whole problem is the arms' ``(s, f)`` counts.
The value of a state is ``V = max_a [p_a (1 + V(a succeeds)) + (1 - p_a) V(a fails)]``, and
``V = 0`` after the last pull. Two exact programs compute it:

- ``"dense"``: every ordered state, layer by layer (``t`` = pulls so far), vectorised with NumPy.
  A layer's states are the weak compositions of ``t`` into ``2k`` parts, indexed by their
  combinatorial rank, so the program stores ``C(n + 2k, 2k)`` values in all (about 4.6 million
  for ``k = 2, n = 100``, built in about 3 s; 184,756 for ``k = 5, n = 10``, under a second;
  6 million for ``k = 5, n = 16``, about 10 s, on two shared CPU cores). Action values of a batch of
  observations are then a few tensor gathers.
- ``"multiset"``: arms are exchangeable, so a state is the sorted multiset of ``(s, f)`` of the
  arms pulled so far, plus the number of untouched arms; memoised recursion in Python. For
  ``k >= n`` there is always an untouched arm, so the size and the value depend on ``n`` only:
  4,435 states for ``n = 10`` and any ``k >= 10`` (a few hundredths of a
  second), about 91,000 for ``n = 15`` (about a second), 1.4 million for ``n = 20`` (about half a
  minute, not allowed by ``"auto"``).

:func:`dynamic_program` picks the dense program when it fits in ``DENSE_LIMIT`` values, else the
multiset one when ``n <= MULTISET_MAX_HORIZON``, and refuses bigger problems.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .prior import UNIFORM, Prior

__all__ = [
    "DENSE_LIMIT",
    "MULTISET_MAX_HORIZON",
    "BayesOptimalDP",
    "bayes_optimal_value",
    "dynamic_program",
]

DENSE_LIMIT = 6_000_000
"""Largest number of ordered states (``C(n + 2k, 2k)``) the dense program stores."""
MULTISET_MAX_HORIZON = 16
"""Largest horizon the multiset program accepts when the dense one does not fit."""
_CHUNK = 65536


def dense_size(k: int, horizon: int) -> int:
    """Number of ordered states of the dense program: ``C(horizon + 2k, 2k)``."""
    return math.comb(horizon + 2 * k, 2 * k)


def bayes_optimal_value(k: int, horizon: int, prior: Prior = UNIFORM) -> float:
    """The exact Bayes-optimal expected total reward of ``horizon`` pulls of ``k`` Bernoulli arms
    whose means are drawn from ``prior``, e.g. 6.660 for ``k = 5, horizon = 10`` under U[0, 1]
    (no policy does better in expectation).

    >>> round(bayes_optimal_value(2, 10), 3), round(bayes_optimal_value(1, 4, Prior(2, 5)), 4)
    (6.022, 1.1429)
    """
    return dynamic_program(k, horizon, prior=prior).value


@functools.lru_cache(maxsize=8)
def dynamic_program(
    k: int,
    horizon: int,
    method: Literal["auto", "dense", "multiset"] = "auto",
    prior: Prior = UNIFORM,
) -> BayesOptimalDP:
    """The solved program for (k, horizon), cached. Raises ValueError where it is too large."""
    if k < 1 or horizon < 1:
        raise ValueError(f"k={k}, horizon={horizon}: both must be >= 1")
    if method == "auto":
        if dense_size(k, horizon) <= DENSE_LIMIT:
            method = "dense"
        elif horizon <= MULTISET_MAX_HORIZON:
            method = "multiset"
        else:
            raise ValueError(
                f"the exact Bayes-optimal program for k={k}, horizon={horizon} is too large: it "
                f"runs up to horizon {MULTISET_MAX_HORIZON} for any k, and for k=1, 2, 3, 4 up to "
                f"horizon 3462, 107, 36, 22 (C(horizon + 2k, 2k) <= {DENSE_LIMIT:,} states)"
            )
    if method == "dense":
        return DenseDP(k, horizon, prior)
    if method == "multiset":
        return MultisetDP(k, horizon, prior)
    raise ValueError(f"method={method!r}: choose 'auto', 'dense' or 'multiset'")


class BayesOptimalDP(ABC):
    """A solved program: ``value`` and the action values of batched observations."""

    k: int
    horizon: int
    prior: Prior
    value: float

    def predictive(self, s, f):
        """Probability that an arm with ``s`` successes and ``f`` failures pays next."""
        return (s + self.prior.alpha) / (s + f + self.prior.alpha + self.prior.beta)

    @abstractmethod
    def action_values(self, successes: Tensor, failures: Tensor) -> Tensor:
        """Q-values (B, k) float64 of pulling each arm.

        A Q-value is the expected total reward of the remaining pulls when pulling that arm now
        and acting optimally afterwards. ``successes``, ``failures``: (B, k) int64.
        """


# -- dense program ---------------------------------------------------------------------------
def _compositions(t: int, m: int, cache: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """All weak compositions of ``t`` into ``m`` parts, (C(t + m - 1, m - 1), m) int64.

    ``cache`` keeps the shorter compositions the recursion reuses (not the top level's).
    """
    if m == 1:
        return np.array([[t]], dtype=np.int64)
    blocks = []
    for first in range(t + 1):
        if (t - first, m - 1) not in cache:
            cache[(t - first, m - 1)] = _compositions(t - first, m - 1, cache)
        rest = cache[(t - first, m - 1)]
        blocks.append(np.concatenate([np.full((len(rest), 1), first, np.int64), rest], axis=1))
    return np.concatenate(blocks)


class DenseDP(BayesOptimalDP):
    """The program over ordered states ``(s_1, f_1, ..., s_k, f_k)``, vectorised by layers."""

    def __init__(self, k: int, horizon: int, prior: Prior = UNIFORM) -> None:
        self.k, self.horizon, self.prior = k, horizon, prior
        m = 2 * k
        self._m = m
        # binom[a, r] = C(a, r) for the combinatorial rank of the bars of a composition.
        top = horizon + m + 1
        binom = np.zeros((top + 1, m + 1), dtype=np.int64)
        for a in range(top + 1):
            for r in range(min(a, m) + 1):
                binom[a, r] = math.comb(a, r)
        self._binom = binom
        sizes = [math.comb(t + m - 1, m - 1) for t in range(horizon + 1)]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        values = np.zeros(self._offsets[-1], dtype=np.float64)
        cache: dict[tuple[int, int], np.ndarray] = {}
        for t in range(horizon - 1, -1, -1):
            states = _compositions(t, m, cache)
            for i in range(0, len(states), _CHUNK):  # bounds the (S, 2k, 2k - 1) temporaries
                chunk = states[i : i + _CHUNK]
                q = self._q(chunk, values, t)
                values[self._offsets[t] + self._rank_np(chunk)] = q.max(axis=1)
        self._values = values
        self.value = float(values[0])
        self._torch_cache: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}

    def _rank_np(self, states: np.ndarray) -> np.ndarray:
        bars = np.cumsum(states[:, :-1], axis=1) + np.arange(self._m - 1)
        return self._binom[bars, np.arange(1, self._m)].sum(axis=1)

    def _q(self, states: np.ndarray, values: np.ndarray, t: int) -> np.ndarray:
        """Action values (S, k) of states (S, 2k) in layer t < horizon."""
        m = self._m
        bars = np.cumsum(states[:, :-1], axis=1) + np.arange(m - 1)  # (S, m-1)
        # Adding one to part j moves every bar at or after j up by one.
        shift = (np.arange(m - 1)[None, :] >= np.arange(m)[:, None]).astype(np.int64)  # (m, m-1)
        succ = bars[:, None, :] + shift[None]  # (S, m, m-1)
        ranks = self._binom[succ, np.arange(1, m)].sum(axis=2)  # (S, m)
        nxt = values[self._offsets[t + 1] + ranks]  # (S, m): value after part j grows
        p = self.predictive(states[:, 0::2], states[:, 1::2])
        return p * (1.0 + nxt[:, 0::2]) + (1.0 - p) * nxt[:, 1::2]

    def action_values(self, successes: Tensor, failures: Tensor) -> Tensor:
        device = successes.device
        if device not in self._torch_cache:
            self._torch_cache[device] = (
                torch.from_numpy(self._binom).to(device),
                torch.from_numpy(self._offsets).to(device),
                torch.from_numpy(self._values).to(device),
            )
        binom, offsets, values = self._torch_cache[device]
        m = self._m
        states = torch.stack([successes, failures], dim=2).reshape(-1, m)
        t = states.sum(dim=1)
        if bool((t >= self.horizon).any()):
            raise ValueError(f"no pulls left: the program is for horizon={self.horizon}")
        ar = torch.arange(m - 1, device=device)
        bars = torch.cumsum(states[:, :-1], dim=1) + ar
        shift = (ar[None, :] >= torch.arange(m, device=device)[:, None]).long()
        succ = bars[:, None, :] + shift[None]
        ranks = binom[succ, ar + 1].sum(dim=2)
        nxt = values[offsets[t + 1][:, None] + ranks]
        p = self.predictive(states[:, 0::2].double(), states[:, 1::2].double())
        return p * (1.0 + nxt[:, 0::2]) + (1.0 - p) * nxt[:, 1::2]


# -- multiset program ------------------------------------------------------------------------
State = tuple[tuple[int, int], ...]


class MultisetDP(BayesOptimalDP):
    """The program over exchangeable states: sorted ``(s, f)`` of the touched arms, memoised."""

    def __init__(self, k: int, horizon: int, prior: Prior = UNIFORM) -> None:
        self.k, self.horizon, self.prior = k, horizon, prior
        self._values: dict[State, float] = {}
        self._q_cache: dict[State, dict[tuple[int, int], float]] = {}
        self.value = self._value(())

    def _value(self, state: State) -> float:
        v = self._values.get(state)
        if v is None:
            q = self._class_values(state)
            v = max(q.values()) if q else 0.0
            self._values[state] = v
        return v

    def _class_values(self, state: State) -> dict[tuple[int, int], float]:
        """Action value of pulling an arm of each distinct ``(s, f)``; (0, 0) is an untouched arm."""
        if sum(s + f for s, f in state) >= self.horizon:
            return {}
        classes = set(state)
        if len(state) < self.k:
            classes.add((0, 0))
        out = {}
        for s, f in classes:
            p = self.predictive(s, f)
            win = self._value(_replace(state, (s, f), (s + 1, f)))
            lose = self._value(_replace(state, (s, f), (s, f + 1)))
            out[(s, f)] = p * (1.0 + win) + (1.0 - p) * lose
        return out

    def action_values(self, successes: Tensor, failures: Tensor) -> Tensor:
        # Code each arm as 1 + s * (horizon + 1) + f (0: untouched); a row sorted is its state.
        # Only the distinct states of the batch are looked up in Python.
        base = self.horizon + 1
        pulled = (successes + failures) > 0
        codes = torch.where(pulled, 1 + successes * base + failures, 0).cpu()
        states, inverse = torch.unique(
            codes.sort(dim=1, descending=True).values, dim=0, return_inverse=True
        )
        table = torch.zeros(len(states), 1 + base * base, dtype=torch.float64)
        for row, state_codes in enumerate(states.tolist()):
            state = tuple(sorted(divmod(c - 1, base) for c in state_codes if c > 0))
            values = self._q_cache.get(state)
            if values is None:
                values = self._class_values(state)
                if not values:
                    raise ValueError(f"no pulls left: the program is for horizon={self.horizon}")
                self._q_cache[state] = values
            for (s, f), q in values.items():
                table[row, 0 if (s, f) == (0, 0) else 1 + s * base + f] = q
        return table[inverse[:, None], codes].to(successes.device)


def _replace(state: State, old: tuple[int, int], new: tuple[int, int]) -> State:
    """``state`` with one ``old`` replaced by ``new`` (``old == (0, 0)``: an untouched arm)."""
    arms = list(state)
    if old != (0, 0):
        arms.remove(old)
    arms.append(new)
    return tuple(sorted(arms))
