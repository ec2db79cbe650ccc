"""A counter-based random stream shared by the single and the batched bandit environment.

Every random number of an episode is a hash of (seed, episode number, stream, counter), so one
instance of the batched environment, seeded ``s + i``, draws exactly what the single environment
seeded ``s + i`` draws, on any device and without one generator per instance. The hash is a
32-bit integer mixer (``lowbias32``, a SplitMix-style counter) written with operators that mean
the same on Python ints, NumPy int64 arrays and torch int64 tensors; every intermediate value
stays below 2**63, so nothing relies on integer overflow.

A Bernoulli draw with probability ``p`` is ``u < threshold`` with ``u`` a uniform 32-bit integer
and ``threshold = round(p * 2**32)``: integer comparison, exact on every device. The arm means an
environment reports are ``threshold / 2**32``, the exact success probabilities; the prior turns
uniform 32-bit integers into thresholds (:meth:`~symlight.tasks.bandit.prior.Prior.thresholds`).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

T = TypeVar("T")  # int, np.ndarray (int64) or torch.Tensor (int64)

MASK32 = 0xFFFFFFFF
SCALE = 2.0**32
_GOLDEN = 0x9E3779B9
_SEED_SALT = 0x85EBCA6B
_MEANS_SALT = 0x243F6A88
_REWARD_SALT = 0xB7E15162


def _mul32(x: T, c: int) -> T:
    """``x * c mod 2**32`` for ``0 <= x < 2**32`` without any intermediate above 2**49."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32


def mix32(x: T) -> T:
    """A bijective 32-bit mixer (lowbias32) of values in ``[0, 2**32)``."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def stream(key: T, counter: T | int) -> T:
    """The ``counter``-th 32-bit integer of the stream ``key``: ``mix32(key + counter * golden)``."""
    return mix32((key + _mul32(counter, _GOLDEN)) & MASK32)


def seed_key(lo: T, hi: T) -> T:
    """A 32-bit key from the low and high 32-bit words of a seed's low 64 bits."""
    return mix32(mix32(lo ^ _SEED_SALT) ^ hi)


def seed_words(seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The low and high 32-bit words (int64 arrays) of non-negative integer seeds."""
    lo = np.array([s & MASK32 for s in seeds], dtype=np.int64)
    hi = np.array([(s >> 32) & MASK32 for s in seeds], dtype=np.int64)
    return lo, hi


def episode_keys(key: T, episode: T | int) -> tuple[T, T]:
    """Keys of the arm-means stream and of the reward stream of one episode."""
    h = stream(key, episode)
    return mix32(h ^ _MEANS_SALT), mix32(h ^ _REWARD_SALT)
