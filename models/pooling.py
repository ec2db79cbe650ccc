"""Masked pooling over set axes: the only way information crosses elements in a linear layer.

All functions honour a padding mask (True for real elements): padded entries never change the
result, a fully padded set pools to zeros (never NaN), and ``max`` uses the dtype's finite minimum
instead of ``-inf`` (``-inf * 0`` is NaN).
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
    "element_mask",
    "masked_pool",
    "pair_mask",
]


def check_pooling(pooling: str, allowed: tuple[str, ...] = POOLINGS) -> str:
    """Return ``pooling`` if it is one of ``allowed``, else raise a ValueError listing them."""
    if pooling not in allowed:
        raise ValueError(f"pooling must be one of {', '.join(allowed)}; got {pooling!r}")
    return pooling


def element_mask(mask: Tensor | None) -> Tensor | None:
    """``(B, n)`` mask -> ``(B, n, 1)``, broadcastable against per-element features."""
    return None if mask is None else mask[:, :, None]


def pair_mask(mask: Tensor | None) -> Tensor | None:
    """``(B, n)`` mask -> ``(B, n, n, 1)``: a pair is real when both of its elements are."""
    return None if mask is None else (mask[:, :, None] & mask[:, None, :])[..., None]


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
    if x.dim() > 3 or any(mask.shape[d] != x.shape[d] for d in dims):
        # pairs: a contiguous full-size mask (a broadcast one in masked_fill costs the chunked
        # pairwise comparison 2.5x its memory); sets: the mask broadcasts over the channels,
        # which is faster
        mask = mask.expand_as(x) if mask.shape != x.shape else mask
    if pooling == "max":
        filled = x.masked_fill(~mask, torch.finfo(x.dtype).min).amax(dims, keepdim=keepdim)
        return filled.masked_fill(~mask.any(dims, keepdim=keepdim), 0.0)
    total = x.masked_fill(~mask, 0.0).sum(dims, keepdim=keepdim)
    if pooling == "sum":
        return total
    if pooling == "mean":
        count = mask.sum(dims, keepdim=keepdim).clamp(min=1)
        return total / count
    check_pooling(pooling)
    raise AssertionError("unreachable")
