"""Sinkhorn normalisation: scores over (row, column) pairs made (nearly) doubly stochastic.

For a matching between two sets, scores ``s_ij`` become log-probabilities by alternately
normalising every row and every column in log space (Sinkhorn 1964; Mena et al. 2018's Gumbel-
Sinkhorn networks): ``s_ij -= logsumexp_j s_ij``, then ``s_ij -= logsumexp_i s_ij``, a fixed number
of times. Both steps commute with permutations of the rows and of the columns. The same layer
normalises any tensor over each of its set axes in turn: over one set of order 1 it is a
log-softmax over the set, over pairs of one set it normalises rows and columns alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, SetMask, set_masks

from .base import EquivariantModule

__all__ = ["Sinkhorn"]


class Sinkhorn(EquivariantModule):
    """Log-space Sinkhorn normalisation of each channel of a ``(1,1)`` tensor, equivariant to the
    permutations of the rows and of the columns: ``f(P·x·Qᵀ) = P·f(x)·Qᵀ`` (and, for any other
    rep, to the permutations of each of its sets).

    ``y = x / t`` with a learned temperature ``t`` per channel (initially ``temperature``), then
    ``iterations`` rounds of ``y_ij -= logsumexp_j y_ij`` (over the real columns) and ``y_ij -=
    logsumexp_i y_ij`` (over the real rows). After the last round every column of ``exp(y)`` sums
    to one, and the rows nearly do: a soft assignment. x: ``(B, n, m, C) -> (B, n, m, C)``;
    padded entries are zeros. For another ``order`` each round normalises over every set axis,
    the last first.
    """

    def __init__(
        self,
        channels: int,
        iterations: int = 10,
        temperature: float = 1.0,
        order: int | tuple[int, ...] = (1, 1),
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        if iterations < 1 or not temperature > 0:
            raise ValueError(
                f"need iterations >= 1 and temperature > 0, got {iterations}, {temperature}"
            )
        rep = Rep(channels, order, group)
        if rep.set_axes == 0:
            raise ValueError(f"Sinkhorn normalises over set axes; {rep} has none")
        super().__init__(rep, rep)
        self.iterations = iterations
        self.log_temperature = nn.Parameter(torch.full((channels,), math.log(temperature)))

    @classmethod
    def from_spec(cls, rep_in: Rep, iterations: int = 10, temperature: float = 1.0) -> Sinkhorn:
        """The normalisation of input ``rep_in`` (a matrix over two sets: ``Cx(1,1)``)."""
        return cls(rep_in.channels, iterations, temperature, rep_in.orders, rep_in.groups)

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        keep = self.rep_in.mask(set_masks(mask, self.rep_in.num_sets))
        axes = range(self.rep_in.set_axes, 0, -1)
        low = torch.finfo(x.dtype).min

        def padded_out(y: Tensor) -> Tensor:  # padded entries take no part in a logsumexp
            return y if keep is None else y.masked_fill(~keep, low)

        y = padded_out(x / self.log_temperature.exp())
        for _ in range(self.iterations):
            for dim in axes:
                y = padded_out(y - y.logsumexp(dim, keepdim=True))
        return self.rep_out.zero_padding(y, mask)

    def options_repr(self) -> str:
        return f"iterations={self.iterations}"
