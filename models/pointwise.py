"""Maps applied to each element (or pair, or invariant) alone: equivariant for every order."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import EquivariantModule, mask_output

__all__ = ["ACTIVATIONS", "MLP", "Activation", "ChannelDropout", "LayerNorm", "Pointwise"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class Pointwise(EquivariantModule):
    """Applies ``module`` to the channel vector of every entry: ``f(P·x) = P·f(x)`` for any order.

    Shape ``(B, *set_axes, c_in) -> (B, *set_axes, c_out)``; padded entries stay zero.
    """

    def __init__(self, module: nn.Module, order: int = 1) -> None:
        super().__init__(order, order)
        self.module = module

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return mask_output(self.module(x), mask, self.out_order)


class Activation(Pointwise):
    """Pointwise nonlinearity by name (``relu``, ``gelu``, ``silu``, ``tanh``, ``sigmoid``)."""

    def __init__(self, name: str = "relu", order: int = 1) -> None:
        if name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")
        super().__init__(ACTIVATIONS[name](), order)
        self.name = name

    def extra_repr(self) -> str:
        return f"{self.name}, order {int(self.in_order)}"


class MLP(EquivariantModule):
    """Per-entry MLP shared across the set, equivariant to S_n: ``f(P·x) = P·f(x)`` for any order.

    ``depth`` linear layers with ``activation`` between them (none after the last).
    x: ``(B, *set_axes, in_channels) -> (B, *set_axes, out_channels)``; padded entries are zeros.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "relu",
        order: int = 1,
    ) -> None:
        super().__init__(order, order)
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}"
            )
        widths = [in_channels] + [hidden] * (depth - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            if i > 0:
                layers.append(ACTIVATIONS[activation]())
            layers.append(nn.Linear(a, b))
        self.net = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return mask_output(self.net(x), mask, self.out_order)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}x{int(self.in_order)} -> {self.out_channels}x{int(self.out_order)}"
            f" | {self.num_weights()} weights"
        )


class LayerNorm(Pointwise):
    """LayerNorm over the channels of each entry alone, equivariant to S_n for any order.

    x: ``(B, *set_axes, channels) -> (B, *set_axes, channels)``; padded entries are zeros.
    """

    def __init__(self, channels: int, order: int = 1) -> None:
        super().__init__(nn.LayerNorm(channels), order)


class ChannelDropout(EquivariantModule):
    """Dropout of whole channels, one draw per set shared by all its entries.

    Equivariant to S_n in training mode too: ``f(P·x) = P·f(x)`` for the same random draw, since
    the dropped channels do not depend on the position in the set. The identity in eval mode.
    x: ``(B, *set_axes, C) -> (B, *set_axes, C)``.
    """

    def __init__(self, p: float = 0.1, order: int = 1) -> None:
        super().__init__(order, order)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.training and self.p > 0:
            shape = (x.shape[0],) + (1,) * int(self.in_order) + (x.shape[-1],)
            keep = torch.rand(shape, device=x.device, dtype=x.dtype) >= self.p
            x = x * keep / (1.0 - self.p)
        return mask_output(x, mask, self.out_order)

    def extra_repr(self) -> str:
        return f"p={self.p}, order {int(self.in_order)}"
