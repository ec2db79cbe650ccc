"""Maps applied to each element (or pair, or invariant) alone: equivariant for every order."""

from __future__ import annotations

from torch import Tensor, nn

from .base import EquivariantModule, mask_output

__all__ = ["ACTIVATIONS", "Activation", "Pointwise"]

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
