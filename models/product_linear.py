"""Complete linear maps between tensors over several independent sets.

A tensor over several sets (rows and columns of a matrix, agents and landmarks) has an order over
each set, ``(k_1, k_2, ...)``, and each set is permuted by its own symmetric group: the group is
the product ``S_n1 x S_n2 x ...`` acting on separate axes. The linear maps that commute with it
are the tensor products of the per-set maps, so a basis is one per-set basis map
(:data:`~symlight.models.linear.TERMS`) chosen for every set, and its size is the product of the
per-set Bell numbers: 2 x 2 = 4 for ``(1, 1) -> (1, 1)``, the exchangeable-matrix layer of
Hartford et al. 2018 (``x_ij``, row pool, column pool, total pool).

Each product map is evaluated one set at a time: the axes of the other sets are folded into the
batch and channel dims, the set's basis maps pool over its axes or keep them, and the result
stays broadcastable (size 1 where a pool will be broadcast back), so channels are mixed while the
terms are small and no dense matrix is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, SetMask, set_masks

from .base import EquivariantModule
from .linear import TERMS, _sum_into, basis_size, materialise
from .pooling import Pooling, check_pooling

__all__ = ["ProductLinear", "product_basis", "product_basis_size", "product_terms", "set_sizes"]


def set_sizes(x: Tensor, masks: Sequence[Tensor | None], orders: Sequence[int]) -> list[int]:
    """The size of each set: its mask's, or the size of its first axis in ``x`` (0: unknown)."""
    sizes, start = [], 1
    for mask, order in zip(masks, orders):
        sizes.append(mask.shape[1] if mask is not None else (x.shape[start] if order else 0))
        start += order
    return sizes


def _set_terms(
    x: Tensor, mask: Tensor | None, start: int, k: int, k_out: int, pooling: str, n: int
) -> list[Tensor]:
    """The basis maps of one set (order ``k`` -> ``l``, its axes at dims ``start``...) on ``x``.

    The axes before the set's are folded into the batch and those after it into the channels,
    so that the set's axes sit where :data:`TERMS` expects them; every map is unfolded again.
    """
    batch, before = x.shape[0], x.shape[1:start]
    after = x.shape[start + k :]
    folded = x.reshape(batch * math.prod(before), *x.shape[start : start + k], math.prod(after))
    if mask is not None and before:
        mask = mask[:, None, :].expand(batch, math.prod(before), n).reshape(-1, n)
    out = []
    for term in TERMS[(k, k_out)](folded, mask, pooling, n):
        value = materialise(term, 2, n) if term.diagonal else term.value
        out.append(value.reshape(batch, *before, *value.shape[1 : 1 + k_out], *after))
    return out


def product_terms(
    x: Tensor,
    masks: Sequence[Tensor | None],
    sizes: Sequence[int],
    in_orders: Sequence[int],
    out_orders: Sequence[int],
    pooling: str,
) -> list[Tensor]:
    """Every product basis map applied to ``x``, each broadcastable against the output.

    ``x`` has ``in_orders[s]`` axes for set ``s`` (sets in order, channels last); the maps are
    listed with the first set's map varying slowest. Per-set maps placed on a diagonal (pair
    outputs) are materialised over that set's two axes; pools stay of size 1.
    """
    values = [x]
    orders = list(in_orders)
    for s, (k, k_out) in enumerate(zip(in_orders, out_orders)):
        start = 1 + sum(orders[:s])
        values = [
            term
            for v in values
            for term in _set_terms(v, masks[s], start, k, k_out, pooling, sizes[s])
        ]
        orders[s] = k_out
    return values


def product_basis(
    x: Tensor,
    masks: Sequence[Tensor | None],
    sizes: Sequence[int],
    in_orders: Sequence[int],
    out_orders: Sequence[int],
    pooling: str,
) -> list[Tensor]:
    """:func:`product_terms` materialised to the output's shape (what the completeness tests
    read).
    """
    shape = (
        x.shape[0],
        *(n for n, k_out in zip(sizes, out_orders) for _ in range(k_out)),
        x.shape[-1],
    )
    terms = product_terms(x, masks, sizes, in_orders, out_orders, pooling)
    return [t.expand(shape) for t in terms]


def product_basis_size(in_orders: Sequence[int], out_orders: Sequence[int]) -> int:
    """Number of product basis maps: the product of the per-set Bell(k + l)."""
    return math.prod(basis_size(k, k_out) for k, k_out in zip(in_orders, out_orders))


class ProductLinear(EquivariantModule):
    """Linear map between tensors over several sets, equivariant to the product of one symmetric
    group per set: ``f((P_1, P_2)·x) = (P_1, P_2)·f(x)``, each ``P_s`` permuting its own axes.

    The most general such map: every product basis map (one per-set basis map chosen for each
    set, :func:`product_basis_size` of them), each with its own ``in_channels x out_channels``
    weights, and a bias that is the image of a constant under the ``0 -> out_orders`` product
    basis. ``(1, 1) -> (1, 1)`` is Hartford et al.'s exchangeable-matrix layer: ``y_ij = W1 x_ij
    + W2 pool_k x_kj + W3 pool_l x_il + W4 pool_kl x_kl + b``. Shapes: ``(B, n_1.., n_2..,
    in_channels) -> (B, n_1.., n_2.., out_channels)`` with as many ``n_s`` as the order over set
    ``s``. ``pooling`` is ``sum``, ``mean`` (over the real elements of each set) or ``max``. The
    mask is a tuple of one ``(B, n_s)`` mask per set; a set of input order 0 needs its mask to
    know its size.

    >>> ProductLinear((1, 1), (1, 1), 8, 16)
    ProductLinear(8x(1,1) -> 16x(1,1) | 528 weights, pooling=mean)
    >>> ProductLinear((2, 0), (1, 1), 3, 4).num_basis
    5
    """

    def __init__(
        self,
        in_orders: Sequence[int],
        out_orders: Sequence[int],
        in_channels: int,
        out_channels: int,
        pooling: Pooling = "mean",
        bias: bool = True,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        in_orders, out_orders = tuple(in_orders), tuple(out_orders)
        if len(in_orders) != len(out_orders):
            raise ValueError(
                f"ProductLinear maps between reps over the same sets, got orders {in_orders} -> "
                f"{out_orders}"
            )
        super().__init__(Rep(in_channels, in_orders, group), Rep(out_channels, out_orders, group))
        self.pooling = check_pooling(pooling)
        self.in_orders, self.out_orders = in_orders, out_orders
        self.num_basis = product_basis_size(in_orders, out_orders)
        self.mix = nn.Linear(self.num_basis * in_channels, out_channels, bias=False)
        num_bias = product_basis_size((0,) * len(out_orders), out_orders)
        self.bias = nn.Parameter(torch.zeros(num_bias, out_channels)) if bias else None

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        order: Sequence[int] | None = None,
        channels: int | None = None,
        pooling: Pooling = "mean",
        bias: bool = True,
    ) -> ProductLinear:
        """The layer for input ``rep_in``: output ``order`` (one per set) and ``channels``
        default to the input's; the groups are the input's.
        """
        orders = rep_in.orders if order is None else tuple(order)
        channels = channels or rep_in.channels
        return cls(rep_in.orders, orders, rep_in.channels, channels, pooling, bias, rep_in.groups)

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        masks = set_masks(mask, len(self.in_orders))
        sizes = set_sizes(x, masks, self.in_orders)
        for s, (n, k_out) in enumerate(zip(sizes, self.out_orders)):
            if n == 0 and k_out > 0:
                raise ValueError(
                    f"{self.extra_repr()}: broadcasting to set {s} needs its (B, n) mask"
                )
        terms = product_terms(x, masks, sizes, self.in_orders, self.out_orders, self.pooling)
        weights = self.mix.weight.split(self.in_channels, dim=1)
        mixed = [F.linear(t, w) for t, w in zip(terms, weights)]
        if self.bias is not None:
            sets = len(sizes)
            one = x.new_ones(1, 1)
            patterns = product_terms(
                one, (None,) * sets, sizes, (0,) * sets, self.out_orders, "sum"
            )
            mixed += [p * b for p, b in zip(patterns, self.bias)]
        out_dims = [n for n, k_out in zip(sizes, self.out_orders) for _ in range(k_out)]
        y = _sum_into(mixed, (x.shape[0], *out_dims, self.out_channels))
        keep = self.rep_out.mask(masks)
        if keep is not None:
            y = y.masked_fill(~keep, 0.0)
        return y

    def options_repr(self) -> str:
        return f"pooling={self.pooling}"
