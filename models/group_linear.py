"""Linear maps between orders that commute with any finite permutation group of the positions.

``EquivariantLinear`` serves S_n for every set size with pooling ops. A smaller group (the rotations
of a ring, the row and column permutations of a matrix) allows more linear maps: one weight per
orbit of the group on the ``(out tuple, in tuple)`` index pairs (:func:`symlight.core.groups.orbit_labels`).
``GroupLinear`` holds those weights, builds the dense ``N^out x N^in`` kernel from them and applies
it, so it acts on exactly the ``N`` positions the group permutes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup, orbit_labels, parse_group
from symlight.core.rep import Rep

from .base import EquivariantModule

__all__ = ["GroupLinear"]


class GroupLinear(EquivariantModule):
    """Linear map between orders, equivariant to a permutation group G of N positions (the group
    its reps name): ``f(g·x) = g·f(x)`` for every ``g`` in G.

    The most general such map: one ``in_channels x out_channels`` weight per orbit of G on the
    entries of the ``N^out_order x N^in_order`` kernel, plus a bias per orbit of G on the output's
    index tuples (one for a set under a transitive group; for pairs under C_n, one per cyclic
    distance ``j - i``). With ``normalize`` (the default) each orbit's weight is divided by the
    number of entries the orbit has in a row, so a pattern averages over its entries like the
    ``mean`` pooling of :class:`~symlight.models.EquivariantLinear`; for G = S_n both layers span
    the same maps. Shapes: ``(B, [N, [N,]] in_channels) -> (B, [N, [N,]] out_channels)``.

    Args:
        group: the group, or an expression for :func:`symlight.core.groups.parse_group`
            (``"dihedral(16)"``).
        in_order: order of the input (0, 1 or 2).
        out_order: order of the output (0, 1 or 2).
        in_channels: channels of the input.
        out_channels: channels of the output.
        bias: add the equivariant bias.
        normalize: divide each orbit's pattern by its entries per row.

    Sets must have exactly ``N`` elements: a padding mask with a False entry is an error, since
    G permutes all ``N`` positions.

    >>> GroupLinear("cyclic(4)", 1, 1, 2, 3)
    GroupLinear(2x1 @ C_4 -> 3x1 @ C_4 | 27 weights, 4 orbits)

    """

    def __init__(
        self,
        group: PermutationGroup | str,
        in_order: int,
        out_order: int,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        normalize: bool = True,
    ) -> None:
        group = parse_group(group)
        super().__init__(Rep(in_channels, in_order, group), Rep(out_channels, out_order, group))
        self.normalize = normalize
        labels = orbit_labels(self.group, self.in_order, self.out_order)
        self.num_basis = int(labels.max()) + 1
        per_row = _entries_per_row(labels.numpy(), self.num_basis)
        self.register_buffer("labels", labels, persistent=False)
        scale = 1.0 / per_row if normalize else np.ones(len(per_row))
        self.register_buffer("scale", torch.from_numpy(scale[labels.numpy()]), persistent=False)
        self.weight = nn.Parameter(torch.empty(self.num_basis, out_channels, in_channels))
        bias_labels = orbit_labels(self.group, 0, self.out_order)[:, 0]
        self.register_buffer("bias_labels", bias_labels, persistent=False)
        self.bias = (
            nn.Parameter(torch.zeros(int(bias_labels.max()) + 1, out_channels)) if bias else None
        )
        # like nn.Linear: uniform in +-1/sqrt(fan_in), fan_in = channels x orbits met in a row
        fan_in = in_channels * _orbits_per_row(labels.numpy())
        bound = 1.0 / math.sqrt(max(fan_in, 1))
        nn.init.uniform_(self.weight, -bound, bound)

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        order: int | None = None,
        channels: int | None = None,
        bias: bool = True,
        normalize: bool = True,
    ) -> GroupLinear:
        """The layer for input ``rep_in``, for the group it names: output ``order`` and
        ``channels`` default to the input's. An input without a group (S_n) is a ValueError.
        """
        if rep_in.group is None:
            raise ValueError(
                f"group_linear needs a group, but its input {rep_in} has none (S_n): give the "
                "network one (group: dihedral(16)), or the task declares it"
            )
        order = rep_in.order if order is None else order
        return cls(
            rep_in.group,
            rep_in.order,
            order,
            rep_in.channels,
            channels or rep_in.channels,
            bias,
            normalize,
        )

    @property
    def degree(self) -> int:
        """The number of positions ``N`` the group permutes."""
        return self.group.degree

    def kernel(self) -> Tensor:
        """The dense map, ``(N^out * out_channels, N^in * in_channels)``."""
        rows, cols = self.labels.shape
        k = self.weight[self.labels] * self.scale.to(self.weight.dtype)[:, :, None, None]
        return k.permute(0, 2, 1, 3).reshape(rows * self.out_channels, cols * self.in_channels)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        n, batch = self.degree, x.shape[0]
        expected = (n,) * self.in_order + (self.in_channels,)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__}({self.group}): expected input (batch, "
                f"{', '.join(map(str, expected))}), got {tuple(x.shape)}; the group permutes "
                f"exactly {n} positions: give the network the task's group"
            )
        if mask is not None and (mask.shape[-1] != n or not bool(mask.all())):
            raise ValueError(
                f"{type(self).__name__}({self.group}) needs sets of exactly {n} real elements "
                "(an all-True mask): the group permutes every position, padding included"
            )
        y = x.reshape(batch, -1) @ self.kernel().T
        out_shape = (batch,) + (n,) * self.out_order + (self.out_channels,)
        y = y.reshape(out_shape)
        if self.bias is not None:
            y = y + self.bias[self.bias_labels].reshape(out_shape[1:])
        return y

    def options_repr(self) -> str:
        return f"{self.num_basis} orbits"


def _entries_per_row(labels: np.ndarray, count: int) -> np.ndarray:
    """For each orbit, how many entries it has in a row where it appears (the same in each)."""
    rows = np.repeat(np.arange(labels.shape[0]), labels.shape[1])
    keys, entries = np.unique(rows * count + labels.reshape(-1), return_counts=True)
    per_row = np.zeros(count, dtype=np.int64)
    per_row[keys % count] = entries
    return per_row


def _orbits_per_row(labels: np.ndarray) -> int:
    """The largest number of distinct orbits in one row of the kernel."""
    ordered = np.sort(labels, axis=1)
    return int((np.diff(ordered, axis=1) != 0).sum(1).max()) + 1
