"""Per-arm features of a bandit observation, normalised so one policy serves any k and horizon.

An observation holds, per arm, the pulls and successes so far, and the steps left. Each arm is
described by its own Beta posterior and by the time left, never by its index, so permuting the
arms permutes the features the same way (equivariant to S_k), and every feature stays in a
bounded range whatever the number of arms and the horizon:

====  =======================================================================
  0   posterior mean ``a / (a + b)``, with ``a = α + successes``, ``b = β + failures`` (the prior)
  1   posterior standard deviation, times 4 (about 1 for an untouched arm)
  2   ``log(1 + pulls) / 4``
  3   ``log(1 + steps_left) / 4``: how much exploring can still pay off
  4   fraction of the episode left, ``steps_left / horizon``
  5   share of the pulls so far spent on this arm, ``pulls / (t + 1)``
  6   1 for an arm never pulled, else 0
====  =======================================================================

The horizon is ``t + steps_left`` with ``t`` the pulls so far, so the observation alone fixes it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .prior import UNIFORM, Prior

__all__ = ["NUM_FEATURES", "arm_features"]

NUM_FEATURES = 7
"""Channels per arm returned by :func:`arm_features`."""


def arm_features(
    pulls: Tensor,
    successes: Tensor,
    steps_left: Tensor,
    prior: Prior = UNIFORM,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Features of each arm: ``(..., k)`` counts and ``(...)`` steps left -> ``(..., k, 7)``.

    Equivariant to permutations of the arms: permuting ``pulls`` and ``successes`` along the
    last axis permutes the output along its arm axis. ``prior`` is the prior of the arm means.
    """
    a, b = prior.posterior(pulls, successes, dtype)
    pulls = pulls.to(dtype)
    left = steps_left.to(dtype).unsqueeze(-1).expand_as(pulls)
    total = a + b
    mean = a / total
    std = torch.sqrt(mean * (1 - mean) / (total + 1))
    t = pulls.sum(-1, keepdim=True)
    horizon = (t + left).clamp(min=1)
    return torch.stack(
        [
            mean,
            4 * std,
            torch.log1p(pulls) / 4,
            torch.log1p(left) / 4,
            left / horizon,
            pulls / (t + 1),
            (pulls == 0).to(dtype),
        ],
        dim=-1,
    )
