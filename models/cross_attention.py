"""Attention from the elements of one set to those of another (Set Transformer's PMA, per element).

Over two sets, a tensor ``x_ij`` of rep ``C x (1,1)`` holds what agent ``i`` sees of landmark
``j``. :class:`CrossAttention` lets every agent attend to the landmarks: agent ``i``'s queries are
learned seeds plus its own summary ``mean_j x_ij``, its keys and values are ``x_ij`` over the real
landmarks ``j``, and the result is one vector per agent (``(1,1) -> (1,0)``). Permuting the
landmarks permutes the keys with their values (the softmax sum does not change) and permuting the
agents permutes the queries: the layer is equivariant to both.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, SetMask, set_masks

from .attention import MAB
from .axes import axis_mask, check_set
from .base import EquivariantModule
from .pooling import masked_pool

__all__ = ["CrossAttention"]


class CrossAttention(EquivariantModule):
    """Each entry attends over the last axis of set ``set``, equivariant to the permutations of
    every set: ``f(P·x) = P·f(x)``, the attended set's order one less.

    ``(1,1) -> (1,0)`` with ``set=1`` (the default: the last set): ``y_i = MAB(q_i, {x_ij : j real})`` with ``seeds``
    queries ``q_i = s_k + mean_j x_ij`` (learned seeds plus the entry's summary), multi-head
    attention, a residual and a feed-forward block (Lee et al. 2019's MAB, layer-normalised
    unless ``layer_norm`` is False); the outputs of the seeds are concatenated (``seeds ·
    channels``). Over one set it is pooling by attention, ``1 -> 0``. An entry with no real
    element to attend to gets zeros. x: ``(B, ..., n_set, ..., in_channels) -> (B, ...,
    seeds · out_channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        order: int | tuple[int, ...] = (1, 1),
        set: int | None = None,  # noqa: A002  (the set of the rep, as a spec writes it)
        heads: int = 4,
        seeds: int = 1,
        layer_norm: bool = True,
        group: PermutationGroup | str | None | tuple = None,
    ) -> None:
        rep_in = Rep(in_channels, order, group)
        set = rep_in.num_sets - 1 if set is None else set  # noqa: A001
        self.set_index = check_set(rep_in, set)
        orders = list(rep_in.orders)
        if orders[set] == 0:
            raise ValueError(f"cannot attend over set {set} of {rep_in}: it has no axis there")
        orders[set] -= 1
        rep_out = Rep(out_channels * seeds, tuple(orders), rep_in.groups)
        super().__init__(rep_in, rep_out)
        self.heads = heads
        self.query = nn.Linear(in_channels, out_channels)
        self.seeds = nn.Parameter(torch.randn(seeds, out_channels) / math.sqrt(out_channels))
        self.attend = MAB(out_channels, in_channels, out_channels, heads, layer_norm)

    @classmethod
    def from_spec(
        cls,
        rep_in: Rep,
        channels: int | None = None,
        set: int | None = None,  # noqa: A002
        heads: int = 4,
        seeds: int = 1,
        layer_norm: bool = True,
    ) -> CrossAttention:
        """Attention over set ``set`` (default: the last set) of input ``rep_in``; ``channels``
        per seed default to the input's.
        """
        out = channels or rep_in.channels
        return cls(
            rep_in.channels, out, rep_in.orders, set, heads, seeds, layer_norm, rep_in.groups
        )

    def forward(self, x: Tensor, mask: SetMask = None) -> Tensor:
        masks = set_masks(mask, self.rep_in.num_sets)
        x = self.rep_in.zero_padding(x, masks)
        dim = self.rep_in.dims(self.set_index)[-1]
        keep = axis_mask(masks[self.set_index], dim, x.dim())
        summary = masked_pool(x, keep, dim, "mean")  # (B, ..., C): the entry's own summary
        keys = x.movedim(dim, -2)
        outer = keys.shape[:-2]
        keys = keys.flatten(0, -3)  # (B * entries, n, C)
        key_mask = None
        if keep is not None:
            key_mask = keep.expand(*x.shape[:-1], 1).movedim(dim, -2)[..., 0].flatten(0, -2)
        queries = self.query(summary).flatten(0, -2)[:, None, :] + self.seeds  # (B*e, seeds, C')
        y = self.attend(queries, keys, key_mask).flatten(1).view(*outer, -1)
        if key_mask is not None:  # nothing to attend to: zeros, as every masked pooling
            y = y * key_mask.any(-1).view(*outer, 1)
        return self.rep_out.zero_padding(y, masks)

    def options_repr(self) -> str:
        return f"set={self.set_index}, heads={self.heads}"
