"""Seeds of independent random streams derived from one run seed."""

from __future__ import annotations

__all__ = ["SEED_STRIDE", "stream_seed"]

SEED_STRIDE = 1_000_003
"""Spacing between the seeds of a run's random streams (training epochs and ranks, fixed
evaluation sets, the equivariance check's permutations): a prime far larger than any salt."""


def stream_seed(seed: int, stream: int) -> int:
    """The seed of stream number ``stream`` of a run seeded with ``seed``.

    >>> stream_seed(0, 2) - stream_seed(0, 1)
    1000003
    """
    return seed + SEED_STRIDE * stream
