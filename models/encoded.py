"""A per-element encoder under a set network: sets of images (or any non-vector elements)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import SetModule

__all__ = ["EncodedSet", "EncoderFactory"]

EncoderFactory = Callable[[tuple[int, ...]], nn.Module]
"""Builds a per-element encoder from the shape of one element. The module maps
``(N, *element_shape) -> (N, C)`` and has an ``out_channels`` attribute (``C``)."""


class EncodedSet(SetModule):
    """``net`` applied to the elements encoded one by one: equivariant to S_n exactly when ``net`` is.

    The encoder sees one element at a time with shared weights, so encoding commutes with every
    permutation of the set: ``f(P·x) = P·f(x)`` holds exactly when it holds for ``net``. Only the
    real elements (``mask`` True) are encoded; padded ones become zero features, so padding never
    reaches the encoder's normalisation statistics and never changes real outputs.
    x: ``(B, n, *element_shape) -> `` whatever ``net`` returns for ``(B, n, C)``.
    """

    def __init__(self, encoder: nn.Module, net: nn.Module) -> None:
        channels = getattr(encoder, "out_channels", None)
        if not isinstance(channels, int):
            raise TypeError(
                f"the encoder {type(encoder).__name__} needs an int attribute out_channels "
                "(the features it returns per element)"
            )
        in_order = int(getattr(net, "in_order", 1))
        if in_order != 1:
            raise ValueError(
                f"{type(net).__name__} takes order {in_order}; an encoded set feeds it order 1"
            )
        super().__init__(1, int(getattr(net, "out_order", 1)))
        self.encoder = encoder
        self.net = net
        self.out_channels_encoded = channels

    def encode(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Per-element features ``(B, n, C)``; padded elements are zeros."""
        batch, n = x.shape[:2]
        if mask is None:
            return self.encoder(x.flatten(0, 1)).view(batch, n, -1)
        features = self.encoder(x[mask])
        out = torch.zeros(batch, n, features.shape[-1], dtype=features.dtype, device=x.device)
        return out.index_put((mask,), features)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.net(self.encode(x, mask), mask)

    def extra_repr(self) -> str:
        return f"encoded elements -> {self.out_channels_encoded} channels | " + self.type_repr()
