"""Image pools: images with the property that defines the odd one out, and sets drawn from them.

A set of ``n`` images is ``n - 1`` images that share a property (a class, or two attributes) and
one that does not, at a uniformly random position. Sets are drawn as positions into the pool
(:class:`SetIndex`), so fixed evaluation sets cost no image memory until they are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["MIN_SHARED", "ImagePool", "SetIndex", "split_pools"]

MIN_SHARED = 16
"""Attribute pairs shared by at least this many images are preferred (distinct images per set)."""


@dataclass(frozen=True)
class SetIndex:
    """A batch of sets as positions into a pool: ``positions`` (B, n), ``y`` (B, n) bool."""

    positions: Tensor
    y: Tensor


class ImagePool:
    """Images with the property that defines the odd one out.

    ``labels`` is ``(N,)`` long (a class per image: the others share a class, the odd one has
    another) or ``(N, A)`` bool (attributes: the others share two attributes, the odd one has
    neither). ``images`` is an ``(N, C, H, W)`` tensor (uint8 in ``0..255`` or float in ``[0, 1]``),
    or a dataset whose item ``i`` is ``(image tensor, anything)`` for sources read from files.

    >>> pool = ImagePool(torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 0, 1, 1, 1]))
    >>> sets = pool.draw_sets(4, 3, torch.Generator().manual_seed(0))
    >>> sets.positions.shape, sets.y.sum(1).tolist()
    (torch.Size([4, 3]), [1, 1, 1, 1])
    >>> pool.images(sets.positions).shape
    torch.Size([4, 3, 1, 2, 2])
    """

    def __init__(self, images: Tensor | Dataset, labels: Tensor, index: Tensor | None = None):
        self.source_images, self.labels_all = images, labels
        self.index = torch.arange(len(labels)) if index is None else index
        labels = labels[self.index]
        self.labels = labels
        if labels.dim() == 1:
            classes = labels.unique()
            self.members = [torch.nonzero(labels == c).flatten() for c in classes]
            if len(self.members) < 2:
                raise ValueError("an anomaly task needs images of at least two classes")
        else:
            attrs = labels.to(torch.float32)
            both = attrs.T @ attrs
            neither = (1 - attrs).T @ (1 - attrs)
            # pairs that enough images share (distinct images in a set of 16) and some lack
            ok = torch.triu((both >= 1) & (neither >= 1), diagonal=1)
            plenty = ok & (both >= MIN_SHARED)
            self.pairs = torch.nonzero(plenty if plenty.any() else ok)
            if len(self.pairs) == 0:
                raise ValueError(
                    "no pair of attributes is shared by some images and absent in others"
                )
            self._pair_cache: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, positions: Tensor) -> ImagePool:
        """The pool of the images at ``positions`` (indices into this pool)."""
        return ImagePool(self.source_images, self.labels_all, self.index[positions])

    def images(self, positions: Tensor) -> Tensor:
        """Float images in ``[0, 1]`` at ``positions`` (any shape ``S``): ``(*S, C, H, W)``."""
        flat = self.index.index_select(0, positions.flatten())
        if isinstance(self.source_images, Tensor):
            out = self.source_images.index_select(0, flat)
            out = out.float() / 255 if out.dtype == torch.uint8 else out.float()
        else:
            out = torch.stack([self.source_images[int(i)][0] for i in flat]).float()
        return out.view(*positions.shape, *out.shape[1:])

    def draw_sets(self, batch_size: int, n: int, gen: torch.Generator) -> SetIndex:
        """``batch_size`` sets of ``n`` images, one odd one each at a uniformly random position."""
        if self.labels.dim() == 1:
            common, odd = self._draw_classes(batch_size, n - 1, gen)
        else:
            drawn = [self._draw_attributes(n - 1, gen) for _ in range(batch_size)]
            common = torch.stack([c for c, _ in drawn])
            odd = torch.cat([o for _, o in drawn])
        where = torch.randint(n, (batch_size,), generator=gen)
        slot = torch.arange(n)[None, :]
        skip = (slot - (slot > where[:, None]).long()).clamp(max=n - 2)
        positions = common.gather(1, skip)
        rows = torch.arange(batch_size)
        positions[rows, where] = odd
        y = torch.zeros(batch_size, n, dtype=torch.bool)
        y[rows, where] = True
        return SetIndex(positions, y)

    def _draw_classes(self, batch_size: int, k: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        if not hasattr(self, "_table"):
            counts = torch.tensor([len(m) for m in self.members])
            table = torch.zeros(len(counts), int(counts.max()), dtype=torch.long)
            for c, m in enumerate(self.members):
                table[c, : len(m)] = m
            self._counts, self._table = counts, table
        classes = len(self._counts)
        c = torch.randint(classes, (batch_size,), generator=gen)
        o = torch.randint(classes - 1, (batch_size,), generator=gen)
        o = o + (o >= c).long()
        count = self._counts[c][:, None]
        # distinct members: the k smallest of random keys over each class's members ...
        keys = torch.rand(batch_size, self._table.shape[1], generator=gen)
        keys = keys.masked_fill(torch.arange(self._table.shape[1])[None, :] >= count, 2.0)
        distinct = keys.topk(min(k, keys.shape[1]), dim=1, largest=False).indices
        # ... or, for classes with fewer than k members, drawn with replacement
        repeated = (torch.rand(batch_size, k, generator=gen) * count).long()
        if distinct.shape[1] < k:
            distinct = repeated
        slots = torch.where(count >= k, distinct, repeated)
        odd = (torch.rand(batch_size, generator=gen) * self._counts[o]).long()
        return self._table[c[:, None], slots], self._table[o, odd]

    def _draw_attributes(self, k: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        a, b = self.pairs[int(torch.randint(len(self.pairs), (1,), generator=gen))].tolist()
        if (a, b) not in self._pair_cache:
            has_a, has_b = self.labels[:, a], self.labels[:, b]
            self._pair_cache[(a, b)] = (
                torch.nonzero(has_a & has_b).flatten(),
                torch.nonzero(~has_a & ~has_b).flatten(),
            )
        both, neither = self._pair_cache[(a, b)]
        return _pick(both, k, gen), _pick(neither, 1, gen)


def _pick(members: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """``k`` members, distinct when there are enough of them, else drawn with replacement."""
    if k <= len(members):
        return members[torch.randperm(len(members), generator=gen)[:k]]
    return members[torch.randint(len(members), (k,), generator=gen)]


def split_pools(
    pools: Mapping[str, ImagePool], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, ImagePool]:
    """Disjoint ``train``, ``val`` and ``test`` pools; the split is fixed by ``seed``.

    A source without a test split (``{"all": pool}``) gives ``test_fraction`` of its images to
    ``test``; a source without a validation split gives ``val_fraction`` of the training images
    to ``val``.
    """
    gen = torch.Generator().manual_seed(seed)
    out = dict(pools)
    if "all" in out:
        everything = out.pop("all")
        order = torch.randperm(len(everything), generator=gen)
        n_test = round(test_fraction * len(everything))
        out["test"] = everything.subset(order[:n_test])
        out["train"] = everything.subset(order[n_test:])
    if "val" not in out:
        train = out["train"]
        order = torch.randperm(len(train), generator=gen)
        n_val = round(val_fraction * len(train))
        out["val"] = train.subset(order[:n_val])
        out["train"] = train.subset(order[n_val:])
    return out
