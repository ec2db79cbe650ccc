"""The contracts of symlight modules: a module on sets, and an equivariant one."""

from __future__ import annotations

from torch import Tensor, nn

from symlight.core.symmetry import Order, check_order

__all__ = ["EquivariantModule", "SetModule", "mask_output"]


class SetModule(nn.Module):
    """A module on sets: maps a tensor of order ``in_order`` to one of order ``out_order``.

    ``forward(x, mask=None)`` takes the ``(B, n)`` padding mask of the set (True for real
    elements); padded outputs are zeros. It promises nothing about symmetry: a
    :class:`SetModule` may depend on the order of the elements (the MLP baseline does). The
    symmetric ones are :class:`EquivariantModule`.
    """

    in_order: Order
    out_order: Order

    def __init__(self, in_order: int, out_order: int) -> None:
        super().__init__()
        self.in_order = check_order(in_order)
        self.out_order = check_order(out_order)

    def num_weights(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def type_repr(self) -> str:
        return f"{int(self.in_order)} -> {int(self.out_order)} | {self.num_weights()} weights"

    def extra_repr(self) -> str:
        return self.type_repr()


class EquivariantModule(SetModule):
    """A :class:`SetModule` equivariant to S_n acting on the set axis (dim 1).

    ``f(P·x) = P·f(x)`` for every permutation ``P`` of the real elements, with ``P`` acting on
    each tensor according to its order (an invariant output does not change). Every symlight
    layer and network except the MLP baseline is one.
    """


def mask_output(y: Tensor, mask: Tensor | None, order: int) -> Tensor:
    """Zero the padded entries of ``y`` (an order-``order`` tensor)."""
    if mask is None or order == Order.INVARIANT:
        return y
    if order == Order.SET:
        keep = mask
    else:
        keep = mask[:, :, None] & mask[:, None, :]
    keep = keep.view(*keep.shape, *([1] * (y.dim() - keep.dim())))
    return y.masked_fill(~keep, 0.0)
