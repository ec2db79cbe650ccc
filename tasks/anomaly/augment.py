"""Augmentation of training images: random shifts with zero fill, from a seeded generator.

Each image of a set is shifted on its own, so the augmentation treats every element alike and
keeps the task's symmetry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["shift_images"]


def shift_images(x: Tensor, shift: int, gen: torch.Generator) -> Tensor:
    """Translate each image of ``x`` (``(..., C, H, W)``) by up to ``shift`` pixels, zero fill.

    >>> x = torch.ones(2, 3, 1, 4, 4)
    >>> y = shift_images(x, 1, torch.Generator().manual_seed(0))
    >>> y.shape == x.shape, bool(((y == 0) | (y == 1)).all()), shift_images(x, 0, None) is x
    (True, True, True)
    """
    if shift <= 0:
        return x
    shape = x.shape
    flat = x.reshape(-1, *shape[-3:])
    count, channels, height, width = flat.shape
    padded = F.pad(flat, (shift, shift, shift, shift)).flatten(2)
    dy = torch.randint(2 * shift + 1, (count, 1, 1), generator=gen)
    dx = torch.randint(2 * shift + 1, (count, 1, 1), generator=gen)
    rows = torch.arange(height)[None, :, None] + dy
    cols = torch.arange(width)[None, None, :] + dx
    index = (rows * (width + 2 * shift) + cols).flatten(1)[:, None, :]
    return padded.gather(2, index.expand(count, channels, -1)).reshape(shape)
