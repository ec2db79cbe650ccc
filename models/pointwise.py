"""Maps applied to each element (or pair, or invariant) alone: equivariant for every order.

Each of them takes and returns the same order (an order per set over several sets: ``order=(1, 1)``
for a matrix whose rows and columns permute); built from a spec (``from_spec``) they take the
channels, orders and groups of their input, so a network knows every channel count when it is
built.
Built on their own, an activation or a dropout works for any number of channels (``?x1``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, SetMask

from .activations import ACTIVATIONS, check_activation, make_activation
from .base import EquivariantModule

__all__ = ["ACTIVATIONS", "MLP", "Activation", "ChannelDropout", "LayerNorm", "Pointwise"]


class Pointwise(EquivariantModule):
    """Applies ``module`` to the channel vector of every entry: ``f(P·x) = P·f(x)`` for any order,
    equivariant to S_n (and to every group of the positions).

    Shape ``(B, *set_axes, c_in) -> (B, *set_axes, c_out)``; padded entries stay zero.
    ``channels`` is the channels it takes and returns when ``module`` keeps them (None: any, not
    declared); ``group`` the group its reps name (None: S_n).
    """

    def __init__(
        self,
        module: nn.Module,
        order: int | tuple[int, ...] = 1,
        channels: int | None = None,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        rep = Rep(channels, order, group)
        super().__init__(rep, rep)
        self.module = module

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        return self.rep_out.zero_padding(self.module(x), mask)

    def options_repr(self) -> str:
        return repr(self.module)


class Activation(Pointwise):
    """Pointwise nonlinearity by name (``relu``, ``gelu``, ``silu``, ``tanh``, ``sigmoid``),
    equivariant to S_n for any order: ``f(P·x) = P·f(x)``.

    >>> Activation("tanh", 2)
    Activation(?x2 -> ?x2 | 0 weights, tanh)
    >>> Activation.from_spec(Rep.parse("16x1 @ dihedral(8)"), name="gelu").rep_out
    16x1 @ D_8
    """

    def __init__(
        self,
        name: str = "relu",
        order: int | tuple[int, ...] = 1,
        channels: int | None = None,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        super().__init__(make_activation(name), order, channels, group)
        self.name = name

    @classmethod
    def from_spec(cls, rep_in: Rep, name: str = "relu") -> Activation:
        """The nonlinearity ``name`` for input ``rep_in`` (it returns the same rep)."""
        return cls(name, rep_in.orders, rep_in.channels, rep_in.groups)

    def options_repr(self) -> str:
        return self.name


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
        order: int | tuple[int, ...] = 1,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        super().__init__(Rep(in_channels, order, group), Rep(out_channels, order, group))
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        check_activation(activation)
        widths = [in_channels] + [hidden] * (depth - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            if i > 0:
                layers.append(make_activation(activation))
            layers.append(nn.Linear(a, b))
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        channels: int | None = None,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "relu",
    ) -> MLP:
        """The MLP for input ``rep_in``; output ``channels`` default to the input's."""
        out = channels or rep_in.channels
        return cls(rep_in.channels, out, hidden, depth, activation, rep_in.orders, rep_in.groups)

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        return self.rep_out.zero_padding(self.net(x), mask)


class LayerNorm(Pointwise):
    """LayerNorm over the channels of each entry alone, equivariant to S_n for any order.

    x: ``(B, *set_axes, channels) -> (B, *set_axes, channels)``; padded entries are zeros.
    """

    def __init__(
        self,
        channels: int,
        order: int | tuple[int, ...] = 1,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        super().__init__(nn.LayerNorm(channels), order, channels, group)

    def options_repr(self) -> str:
        return ""

    @classmethod
    def from_spec(cls, rep_in: Rep) -> LayerNorm:
        """The normalisation for input ``rep_in`` (it returns the same rep)."""
        return cls(rep_in.channels, rep_in.orders, rep_in.groups)


class ChannelDropout(EquivariantModule):
    """Dropout of whole channels, one draw per set shared by all its entries; equivariant to S_n.

    Equivariant in training mode too: ``f(P·x) = P·f(x)`` for the same random draw, since the
    dropped channels do not depend on the position in the set. The identity in eval mode.
    x: ``(B, *set_axes, C) -> (B, *set_axes, C)``; ``channels`` is ``C`` (None: any).
    """

    def __init__(
        self,
        p: float = 0.1,
        order: int | tuple[int, ...] = 1,
        channels: int | None = None,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        rep = Rep(channels, order, group)
        super().__init__(rep, rep)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    @classmethod
    def from_spec(cls, rep_in: Rep, p: float = 0.1) -> ChannelDropout:
        """The dropout for input ``rep_in`` (it returns the same rep)."""
        return cls(p, rep_in.orders, rep_in.channels, rep_in.groups)

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        if self.training and self.p > 0:
            shape = (x.shape[0],) + (1,) * self.rep_in.set_axes + (x.shape[-1],)
            keep = torch.rand(shape, device=x.device, dtype=x.dtype) >= self.p
            x = x * keep / (1.0 - self.p)
        return self.rep_out.zero_padding(x, mask)

    def options_repr(self) -> str:
        return f"p={self.p}"
