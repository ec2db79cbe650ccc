"""A per-element encoder under a set network: sets of images (or any non-vector elements)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from symlight.core.rep import Rep

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

    ``rep_in`` is order 1 over the set with undeclared channels (the elements are not vectors),
    under the group of ``net``; ``rep_out`` is ``net.rep_out``. A ``net`` that takes another
    order, or other channels than the encoder's ``C``, is a ValueError when it is built.
    """

    def __init__(self, encoder: nn.Module, net: nn.Module) -> None:
        channels = getattr(encoder, "out_channels", None)
        if not isinstance(channels, int):
            raise TypeError(
                f"the encoder {type(encoder).__name__} needs an int attribute out_channels "
                "(the features it returns per element)"
            )
        features = Rep(channels, 1)
        net_in = getattr(net, "rep_in", None)
        if isinstance(net_in, Rep) and not features.with_group(net_in.groups).matches(net_in):
            raise ValueError(
                f"the encoder {type(encoder).__name__} returns {features} but "
                f"{type(net).__name__} takes {net_in}"
            )
        net_out = getattr(net, "rep_out", None)
        groups = net_in.groups if isinstance(net_in, Rep) else None
        super().__init__(
            Rep(None, 1, groups), net_out if isinstance(net_out, Rep) else Rep(None, 1)
        )
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

    def options_repr(self) -> str:
        return f"encoded to {self.out_channels_encoded} channels"
