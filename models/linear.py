"""Complete bases of permutation-equivariant linear maps between orders 0, 1 and 2.

A linear map from order k to order l that commutes with every permutation is a combination of
Bell(k + l) basis maps (Maron et al. 2019), each one a pooling over some set axes followed by a
broadcast: 1 for 0->0, 1 for 0->1 and 1->0, 2 for 1->1 and 0->2 and 2->0, 5 for 1->2 and 2->1,
15 for 2->2. ``EquivariantLinear`` evaluates the basis maps of its order pair and mixes them with
one weight matrix: no dense ``n^(k+l)`` matrix is ever built, so the same weights serve every set
size.

Each basis map is returned as a :class:`Term`: a tensor that broadcasts against the output (shape
``(B, 1 or n, [1 or n,] C)``), or, for pair outputs, a per-element tensor placed on the diagonal.
The layer mixes the channels of each term while it is still small and broadcasts afterwards, so a
2->2 layer costs two ``n^2``-sized matrix products plus pooling. ``BASES`` gives the same maps
materialised to the output's shape, which is what the completeness tests read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, entry_mask

from .base import EquivariantModule
from .pooling import Pooling, check_pooling, masked_pool

__all__ = ["BASES", "TERMS", "EquivariantLinear", "Term", "basis_size", "materialise"]


class Term(NamedTuple):
    """One basis map applied to the input.

    ``value`` broadcasts against the output shape; when ``diagonal`` is True (pair outputs only)
    it is a ``(B, n or 1, C)`` tensor that lives on the diagonal ``i == j`` and is zero elsewhere.
    """

    value: Tensor
    diagonal: bool = False


TermsFn = Callable[[Tensor, "Tensor | None", str, int], list[Term]]
"""(x, mask, pooling, n) -> the basis maps applied to x, as broadcastable terms."""

Basis = Callable[[Tensor, "Tensor | None", str, int], list[Tensor]]
"""(x, mask, pooling, n) -> the basis maps applied to x, each of the output's shape."""


# -- pooled views of an order-2 tensor --------------------------------------------------------
def diagonal(x: Tensor) -> Tensor:
    """``(B, n, n, C) -> (B, n, C)``: the entries ``x[:, i, i]``."""
    return x.diagonal(dim1=1, dim2=2).movedim(-1, 1)


def _pair_pools(x: Tensor, mask: Tensor | None, pooling: str) -> dict[str, Tensor]:
    """The pooled quantities of a pair tensor: rows, columns, diagonal, everything."""
    diag = diagonal(x)
    diag_pool = masked_pool(diag, entry_mask(mask, 1), 1, pooling, keepdim=True)  # (B, 1, C)
    if mask is None or pooling == "max":
        pairs = entry_mask(mask, 2)
        rows = masked_pool(x, pairs, 2, pooling)  # (B, n, C): pool over j of x[i, j]
        cols = masked_pool(x, pairs, 1, pooling)  # (B, n, C): pool over i of x[i, j]
        total = masked_pool(x, pairs, (1, 2), pooling, keepdim=True).squeeze(2)  # (B, 1, C)
    else:  # zero the padded pairs once; every sum below then ignores them
        x = x.masked_fill(~entry_mask(mask, 2), 0.0)
        rows, cols = x.sum(2), x.sum(1)
        total = rows.sum(1, keepdim=True)
        if pooling == "mean":
            count = mask.sum(1).clamp(min=1).to(x.dtype)[:, None, None]  # real elements
            rows, cols, total = rows / count, cols / count, total / count**2
    return {"diag": diag, "rows": rows, "cols": cols, "diag_pool": diag_pool, "all_pool": total}


# -- the bases, as broadcastable terms ---------------------------------------------------------
def _terms_0_0(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    return [Term(x)]


def _terms_0_1(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    return [Term(x[:, None, :])]


def _terms_0_2(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    return [Term(x[:, None, :], diagonal=True), Term(x[:, None, None, :])]


def _terms_1_0(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    return [Term(masked_pool(x, entry_mask(mask, 1), 1, pooling))]


def _terms_1_1(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    return [Term(x), Term(masked_pool(x, entry_mask(mask, 1), 1, pooling, keepdim=True))]


def _terms_1_2(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    pooled = masked_pool(x, entry_mask(mask, 1), 1, pooling, keepdim=True)  # (B, 1, C)
    return [
        Term(x, diagonal=True),  # y[i, i] = x[i]
        Term(x[:, :, None]),  # y[i, j] = x[i]
        Term(x[:, None, :]),  # y[i, j] = x[j]
        Term(pooled, diagonal=True),  # y[i, i] = pool x
        Term(pooled[:, :, None]),  # y[i, j] = pool x
    ]


def _terms_2_0(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    pools = _pair_pools(x, mask, pooling)
    return [Term(pools["diag_pool"][:, 0]), Term(pools["all_pool"][:, 0])]


def _terms_2_1(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    pools = _pair_pools(x, mask, pooling)
    return [
        Term(pools["diag"]),  # y[i] = x[i, i]
        Term(pools["rows"]),  # y[i] = pool_j x[i, j]
        Term(pools["cols"]),  # y[i] = pool_j x[j, i]
        Term(pools["diag_pool"]),  # y[i] = pool_j x[j, j]
        Term(pools["all_pool"]),  # y[i] = pool_jk x[j, k]
    ]


def _terms_2_2(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Term]:
    p = _pair_pools(x, mask, pooling)
    terms = [Term(x), Term(x.transpose(1, 2))]  # y[i, j] = x[i, j], x[j, i]
    for name in ("diag", "rows", "cols", "diag_pool", "all_pool"):
        terms.append(Term(p[name], diagonal=True))  # on the diagonal: y[i, i] = ...
    for name in ("diag", "rows", "cols"):
        terms.append(Term(p[name][:, :, None]))  # y[i, j] = v[i]
        terms.append(Term(p[name][:, None, :]))  # y[i, j] = v[j]
    terms.append(Term(p["diag_pool"][:, :, None]))  # y[i, j] = pool_k x[k, k]
    terms.append(Term(p["all_pool"][:, :, None]))  # y[i, j] = pool_kl x[k, l]
    return terms


TERMS: dict[tuple[int, int], TermsFn] = {
    (0, 0): _terms_0_0,
    (0, 1): _terms_0_1,
    (0, 2): _terms_0_2,
    (1, 0): _terms_1_0,
    (1, 1): _terms_1_1,
    (1, 2): _terms_1_2,
    (2, 0): _terms_2_0,
    (2, 1): _terms_2_1,
    (2, 2): _terms_2_2,
}
"""Basis maps for each ``(in_order, out_order)`` as broadcastable :class:`Term` s."""


def materialise(term: Term, out_order: int, n: int) -> Tensor:
    """A term at the full output shape ``(B, [n, [n,]] C)``."""
    value = term.value
    if term.diagonal:
        return torch.diag_embed(value.expand(-1, n, -1).movedim(1, -1)).movedim(1, -1)
    shape = (value.shape[0],) + (n,) * out_order + (value.shape[-1],)
    return value.expand(shape)


def _dense(terms: TermsFn, out_order: int) -> Basis:
    def basis(x: Tensor, mask: Tensor | None, pooling: str, n: int) -> list[Tensor]:
        return [materialise(t, out_order, n) for t in terms(x, mask, pooling, n)]

    basis.__doc__ = f"{terms.__name__} materialised to the output's shape."
    return basis


BASES: dict[tuple[int, int], Basis] = {key: _dense(fn, key[1]) for key, fn in TERMS.items()}
"""Basis maps for each ``(in_order, out_order)``, each of the output's shape; Bell(k + l) maps."""


def basis_size(in_order: int, out_order: int) -> int:
    """Number of basis maps from ``in_order`` to ``out_order`` (Bell(k + l))."""
    x = torch.zeros((1,) + (1,) * in_order + (1,))
    return len(TERMS[(in_order, out_order)](x, None, "sum", 1))


class EquivariantLinear(EquivariantModule):
    """Linear map between orders, equivariant to S_n: ``f(P·x) = P·f(x)``.

    The most general such map: every basis map of the order pair, each with its own
    ``in_channels x out_channels`` weights, plus a bias that is itself equivariant (the image of
    a constant under the ``0 -> out_order`` basis: one bias for sets; for pairs, one on the
    diagonal and one on every pair). Shapes: ``(B, [n, [n,]] in_channels) ->
    (B, [n, [n,]] out_channels)`` with as many ``n`` as the order. ``pooling`` is ``sum``,
    ``mean`` (normalised by the number of real elements or pairs) or ``max``.

    Being equivariant to S_n, it is equivariant to every group of the positions: ``group``
    (default None, S_n) only names the group its reps carry, as a network built for a group
    (``EquivariantNetwork(..., group=...)``) needs.

    >>> EquivariantLinear(1, 2, 16, 8)
    EquivariantLinear(16x1 -> 8x2 | 656 weights, pooling=mean)
    >>> EquivariantLinear.from_spec(Rep.parse("16x1"), order=2, channels=8).rep_out
    8x2
    """

    def __init__(
        self,
        in_order: int,
        out_order: int,
        in_channels: int,
        out_channels: int,
        pooling: Pooling = "mean",
        bias: bool = True,
        group: PermutationGroup | str | None = None,
    ) -> None:
        super().__init__(Rep(in_channels, in_order, group), Rep(out_channels, out_order, group))
        self.pooling = check_pooling(pooling)
        self._terms = TERMS[(self.in_order, self.out_order)]
        self.num_basis = basis_size(self.in_order, self.out_order)
        self.mix = nn.Linear(self.num_basis * in_channels, out_channels, bias=False)
        self.bias = (
            nn.Parameter(torch.zeros(basis_size(0, self.out_order), out_channels)) if bias else None
        )

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        order: int | None = None,
        channels: int | None = None,
        pooling: Pooling = "mean",
        bias: bool = True,
    ) -> EquivariantLinear:
        """The layer for input ``rep_in``: output ``order`` and ``channels`` default to the
        input's; the group is the input's.
        """
        order = rep_in.order if order is None else order
        return cls(
            rep_in.order,
            order,
            rep_in.channels,
            channels or rep_in.channels,
            pooling,
            bias,
            rep_in.group,
        )

    def _size(self, x: Tensor, mask: Tensor | None) -> int:
        if self.in_order > 0:
            return x.shape[1]
        if mask is not None:
            return mask.shape[1]
        if self.out_order > 0:
            raise ValueError(f"{self.extra_repr()}: broadcasting to a set needs the (B, n) mask")
        return 1

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        n, c = self._size(x, mask), self.in_channels
        weights = self.mix.weight.split(c, dim=1)
        full: list[Tensor] = []
        diag: list[Tensor] = []
        for term, w in zip(self._terms(x, mask, self.pooling, n), weights):
            if term.value.dim() == 4 and term.value.shape[1] == term.value.shape[2] == n > 1:
                y = _linear_pairs(term.value, w)
            else:
                y = F.linear(term.value, w)
            (diag if term.diagonal else full).append(y)
        if self.bias is not None:  # the image of a constant under the 0 -> out_order basis
            if self.out_order == 2:
                diag.append(self.bias[0])
            full.append(self.bias[-1])
        batch = x.shape[0]
        out_shape = (batch,) + (n,) * self.out_order + (self.out_channels,)
        y = _sum_into(full, out_shape) if full else x.new_zeros(out_shape)
        if diag:  # y is a fresh tensor: add the diagonal terms in place
            d = sum(diag[1:], diag[0]).expand(batch, n, -1)
            y.diagonal(dim1=1, dim2=2).add_(d.movedim(1, -1))
        keep = self.rep_out.mask(mask)
        if keep is not None:  # y is fresh: zero its padding in place
            y.masked_fill_(~keep, 0.0)
        return y

    def options_repr(self) -> str:
        return f"pooling={self.pooling}"


def _sum_into(terms: list[Tensor], shape: tuple[int, ...]) -> Tensor:
    """The sum of broadcastable ``terms`` as a fresh tensor of ``shape``.

    The smaller terms are summed first and the full-size ones added in place, so at most one
    output-sized tensor is allocated besides the terms themselves.
    """
    small = [t for t in terms if t.shape != shape]
    large = [t for t in terms if t.shape == shape]
    if not large:
        total = sum(small[1:], small[0])
        return total.expand(shape).clone() if total.shape != shape else total
    y = large[0]  # the output of F.linear: fresh, and not needed by its backward
    for t in large[1:] + small:
        y.add_(t)
    return y


def _linear_pairs(x: Tensor, weight: Tensor) -> Tensor:
    """``F.linear`` on a pair tensor that may be a transposed view, without copying it."""
    if x.stride(1) < x.stride(2):  # a transpose: mix the contiguous tensor, transpose the result
        return F.linear(x.transpose(1, 2), weight).transpose(1, 2)
    return F.linear(x, weight)
