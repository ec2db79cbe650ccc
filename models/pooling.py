"""Masked pooling over set axes: the only way information crosses elements in a linear layer.

All functions honour a padding mask (True for real elements): padded entries never change the
result, a fully padded set pools to zeros (never NaN), and ``max`` uses the dtype's finite minimum
instead of ``-inf`` (``-inf * 0`` is NaN). The mask of a tensor of any order comes from
:func:`symlight.core.rep.entry_mask` (or ``Rep.mask``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Pooling = Literal["sum", "mean", "max"]
POOLINGS: tuple[str, ...] = ("sum", "mean", "max")
Reduction = Literal["sum", "mean", "max", "min"]
"""Poolings plus ``min``: for reductions that are not part of a linear basis."""
REDUCTIONS: tuple[str, ...] = ("sum", "mean", "max", "min")

__all__ = [
    "POOLINGS",
    "REDUCTIONS",
    "Pooling",
    "Reduction",
    "check_pooling",
    "masked_pool",
]


def check_pooling(pooling: str, allowed: tuple[str, ...] = POOLINGS) -> str:
    """Return ``pooling`` if it is one of ``allowed``, else raise a ValueError listing them."""
    if pooling not in allowed:
        raise ValueError(f"pooling must be one of {', '.join(allowed)}; got {pooling!r}")
    return pooling


def masked_pool(
    x: Tensor, mask: Tensor | None, dim: int | tuple[int, ...], pooling: str, keepdim: bool = False
) -> Tensor:
    """Pool ``x`` over ``dim`` with ``sum``, ``mean`` (size-normalised), ``max`` or ``min``.

    ``mask`` is None (all real) or a bool tensor broadcastable to ``x``.
    """
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if pooling == "min":
        return -masked_pool(-x, mask, dims, "max", keepdim)
    if mask is None:
        if pooling == "sum":
            return x.sum(dims, keepdim=keepdim)
        if pooling == "mean":
            return x.mean(dims, keepdim=keepdim)
        if pooling == "max":
            return x.amax(dims, keepdim=keepdim)
        check_pooling(pooling)
    # the mask broadcasts (its channel dim is 1): negate and count it at its own size
    padded = ~mask
    if pooling == "max":
        filled = x.masked_fill(padded, torch.finfo(x.dtype).min).amax(dims, keepdim=keepdim)
        return filled.masked_fill(~mask.any(dims, keepdim=keepdim), 0.0)
    total = x.masked_fill(padded, 0.0).sum(dims, keepdim=keepdim)
    if pooling == "sum":
        return total
    if pooling == "mean":
        if any(mask.shape[d] != x.shape[d] for d in dims):  # a mask broadcast over a pooled dim
            mask = mask.expand_as(x)
        count = mask.sum(dims, keepdim=keepdim).clamp(min=1)
        return total / count
    check_pooling(pooling)
    raise AssertionError("unreachable")
