"""The argmax family: find, mark, rank or regress the maximum of a set.

Each element has a score: its value when ``channels == 1``, else a fixed hidden function of its
feature vector (a random two-layer tanh network drawn from ``seed``). Targets, by ``target``:

- ``argmax``: which element is largest. Per-element logits, softmax over the set; the loss is
  ``-log P(pick a maximum)``. Equivariant.
- ``onehot``: per element, "is this a maximum?" (binary cross-entropy). Equivariant.
- ``max``: the largest score (invariant regression, L1 loss).
- ``rank``: per element, its rank ``r_i = #{j : s_j < s_i}`` (0 for the smallest). Trained by
  regression on ``r_i / (n - 1)``; the prediction is read off by ranking the outputs. Equivariant.
- ``topk``: per element, "is this among the ``k`` largest?" (binary cross-entropy). Equivariant.
- ``second``: which element is second largest. Trained and scored like ``argmax``. Equivariant.

Ties have one answer that respects the symmetry: tied maxima are all correct for ``argmax`` and all
marked for ``onehot``; tied elements share the smallest rank (``1 2 2 4`` ranking); an element is in
the top k when fewer than k elements are strictly larger, so ties at the boundary are all in. The
second largest is the second entry of the scores sorted in decreasing order, and every element holding
that value is correct (in ``3 1 3 2`` both 3s are; in ``3 1 2`` the 2 is). A set of one element has
argmax 0, rank 0, is its own maximum and its own second largest. Sets are padded to the largest in the batch
and the ``(B, n)`` mask marks the real elements.

Training batches are drawn fresh from a generator seeded by ``seed``, the process rank and the epoch,
so runs are reproducible; the stream's position is saved in checkpoints, so a run resumed from a
checkpoint (``last.ckpt``), mid-epoch included, draws the batches it would have drawn. Validation
and test sets are fixed. Extra validation sets at larger n (``val_sizes``) measure generalisation to
set sizes never seen in training, logged as ``val/acc@n=100`` etc.

Beside each score, validation and test log what a trivial predictor scores on the same sets, named
``<score>_<baseline>`` (``val/element_acc_nothing@n=100`` beside ``val/element_acc@n=100``, as sweep
configs name them in ``baselines:``):

- ``nothing`` (``onehot``, ``topk``): mark no element;
- ``cutoff`` (``onehot``, ``topk``, ``second``): a fixed cut-off ``c`` on the score, the quantile
  ``1 - k/n`` of one element's value at the mean training size ``n`` (``k = 1`` for ``onehot`` and
  ``second``). ``onehot`` and ``topk`` mark the elements above ``c``; ``second`` picks the largest
  element at or below ``c`` (the largest of all if none is). Over sets of ``n`` independent
  values this is the fixed cut-off that solves most sets: it solves those with exactly ``k``
  elements above it, ``C(n, k) p^k (1 - p)^(n - k)`` with ``p = k/n`` (0.39 for one of 10, 0.27 for
  three of 10). Only for one channel of uniform or normal values, where the quantile has a closed
  form;
- ``chance`` (``argmax``, ``second``): the expected score of an element picked at random;
- ``prior`` (``max``): the median of the training target, the constant with the lowest expected
  absolute error, ``F^-1(0.5^(1/n))`` for the values' distribution function ``F`` (same
  conditions as ``cutoff``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import MeanAbsoluteError, MeanMetric, Metric

from symlight.core.rep import Rep

from .base import FreshBatches, MetricArgs, SetTask, batch_loader, check_at_least

__all__ = ["ArgmaxDataModule", "Target", "Values"]

Target = Literal["argmax", "onehot", "max", "rank", "topk", "second"]
Values = Literal["uniform", "normal", "integers"]

_OUTPUT_ORDER = {"argmax": 1, "onehot": 1, "max": 0, "rank": 1, "topk": 1, "second": 1}


class _SetSampler:
    """Draws batches of padded sets with their targets; pure function of a torch.Generator."""

    def __init__(self, task: ArgmaxDataModule) -> None:
        self.task = task
        hidden = torch.Generator().manual_seed(task.seed)
        width = 16
        self.w1 = torch.randn(task.channels, width, generator=hidden) / math.sqrt(task.channels)
        self.b1 = torch.randn(width, generator=hidden) * 0.1
        self.w2 = torch.randn(width, generator=hidden) / math.sqrt(width)

    def score(self, x: Tensor) -> Tensor:
        if self.task.channels == 1:
            return x[..., 0]
        return torch.tanh(x @ self.w1 + self.b1) @ self.w2

    def values(self, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
        t = self.task
        if t.values == "uniform":
            return t.low + (t.high - t.low) * torch.rand(shape, generator=gen)
        if t.values == "normal":
            return torch.randn(shape, generator=gen)
        return torch.randint(int(t.low), int(t.high) + 1, shape, generator=gen).float()

    def batch(self, batch_size: int, n_min: int, n_max: int, gen: torch.Generator) -> dict:
        sizes = torch.randint(n_min, n_max + 1, (batch_size,), generator=gen)
        n = int(sizes.max())
        mask = torch.arange(n)[None, :] < sizes[:, None]
        x = self.values((batch_size, n, self.task.channels), gen) * mask[..., None]
        return {"x": x, "mask": mask, **targets(self.score(x), mask, self.task.target, self.task.k)}


def targets(score: Tensor, mask: Tensor, target: str, k: int = 1) -> dict[str, Tensor]:
    """Targets of every kind for scores ``(B, n)``; padded entries are ignored."""
    low = torch.finfo(score.dtype).min
    masked = score.masked_fill(~mask, low)
    best = masked.amax(1, keepdim=True)
    if target in ("argmax", "onehot"):
        return {"y": (masked == best) & mask}
    if target == "max":
        return {"y": best.squeeze(1)}
    if target == "second":
        ordered = masked.sort(1, descending=True).values
        second = ordered[:, 1:2] if ordered.shape[1] > 1 else best
        second = torch.where(mask.sum(1, keepdim=True) > 1, second, best)
        return {"y": (masked == second) & mask}
    # padded entries sort last (as the largest value), so they are never counted as smaller
    ordered = score.masked_fill(~mask, torch.finfo(score.dtype).max).sort(1).values.contiguous()
    if target == "rank":
        smaller = torch.searchsorted(ordered, score.contiguous(), side="left")
        return {"y": smaller.masked_fill(~mask, 0)}
    at_most = torch.searchsorted(ordered, score.contiguous(), side="right")
    larger = mask.sum(1, keepdim=True) - at_most
    return {"y": (larger < k) & mask}


class ArgmaxDataModule(SetTask):
    """Sets of numbers (or vectors) and the argmax family of targets over them.

    Symmetry: permuting a set's elements permutes per-element targets the same way and leaves
    ``max`` unchanged. See the module docstring for targets, ties and data.

    Args:
        target: what to predict: ``argmax``, ``onehot``, ``max``, ``rank``, ``topk`` or
            ``second``.
        n_min: smallest training set size.
        n_max: largest training set size (sizes are uniform in ``n_min..n_max``).
        val_sizes: extra validation sets of exactly these sizes (size generalisation).
        values: element distribution: ``uniform`` on ``[low, high]``, standard ``normal``, or
            ``integers`` in ``low..high`` (ties are then common).
        low: lower bound for ``uniform`` and ``integers``.
        high: upper bound for ``uniform`` and ``integers``.
        channels: numbers per element (``element_shape = (channels,)``); above 1 the score is a
            hidden function of the vector.
        k: how many elements ``topk`` marks.
        batch_size: sets per batch.
        batches_per_epoch: training batches per epoch (each one freshly drawn).
        val_sets: sets in each validation and test set.
        seed: seeds the data, the hidden score function and the fixed evaluation sets.

    """

    def __init__(
        self,
        target: Target = "argmax",
        n_min: int = 10,
        n_max: int = 10,
        val_sizes: Sequence[int] = (100, 1000),
        values: Values = "uniform",
        low: float = 0.0,
        high: float = 1.0,
        channels: int = 1,
        k: int = 3,
        batch_size: int = 128,
        batches_per_epoch: int = 100,
        val_sets: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if target not in _OUTPUT_ORDER:
            raise ValueError(f"target must be one of {', '.join(_OUTPUT_ORDER)}; got {target!r}")
        if not 1 <= n_min <= n_max:
            raise ValueError(f"need 1 <= n_min <= n_max, got n_min={n_min}, n_max={n_max}")
        if any(size < 1 for size in val_sizes) or len(set(val_sizes)) < len(val_sizes):
            raise ValueError(f"val_sizes must be distinct positive sizes, got {list(val_sizes)}")
        if (values == "uniform" and not low < high) or (values == "integers" and not low <= high):
            raise ValueError(f"need low < high for {values} values, got low={low}, high={high}")
        check_at_least(
            1,
            channels=channels,
            k=k,
            batch_size=batch_size,
            batches_per_epoch=batches_per_epoch,
            val_sets=val_sets,
        )
        self.save_hyperparameters()
        self.target, self.n_min, self.n_max = target, n_min, n_max
        self.val_sizes = [int(s) for s in val_sizes]
        self.values, self.low, self.high = values, low, high
        self.channels, self.k, self.seed = channels, k, seed
        self.batch_size, self.batches_per_epoch, self.val_sets = (
            batch_size,
            batches_per_epoch,
            val_sets,
        )

        self.rep_out = Rep(1, order=_OUTPUT_ORDER[target])
        self.element_shape = (channels,)
        self.val_names = [""] + [f"@n={s}" for s in self.val_sizes]
        self.sampler = _SetSampler(self)
        self.train_batches = FreshBatches(self, self._draw_train, batches_per_epoch)

    # -- data ---------------------------------------------------------------------------------
    def _draw_train(self, gen: torch.Generator) -> dict:
        return self.sampler.batch(self.batch_size, self.n_min, self.n_max, gen)

    def _fixed(self, sizes: tuple[int, int], salt: int) -> list[dict]:
        def draw(size: int, gen: torch.Generator) -> dict:
            return self.sampler.batch(size, *sizes, gen)

        return self.fixed_batches(draw, self.val_sets, self.batch_size, salt=10_000 + salt)

    def _evaluation_sets(self, salt: int) -> list[list[dict]]:
        sets = [self._fixed((self.n_min, self.n_max), salt)]
        sets += [self._fixed((s, s), salt + 1 + i) for i, s in enumerate(self.val_sizes)]
        return sets

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> list[DataLoader]:
        return [batch_loader(b) for b in self._evaluation_sets(salt=0)]

    def test_dataloader(self) -> list[DataLoader]:
        return [batch_loader(b) for b in self._evaluation_sets(salt=100)]

    def predict_dataloader(self) -> DataLoader:
        return batch_loader(self._fixed((self.n_min, self.n_max), salt=200))

    # -- objective ----------------------------------------------------------------------------
    def metrics(self) -> dict[str, Metric]:
        """``mae`` for ``max``; the fraction of sets solved (``acc``) otherwise, and the fraction
        of elements right (``element_acc``) for the per-element targets but ``argmax`` and
        ``second``; each also as ``<name>_<baseline>`` for the trivial predictors of
        :meth:`baselines`.
        """
        if self.target == "max":
            return {name: MeanAbsoluteError() for name in self._named("mae")}
        if self.target in ("argmax", "second"):
            return {name: MeanMetric() for name in self._named("acc")}
        return {name: MeanMetric() for name in self._named("acc", "element_acc")}

    def _named(self, *scores: str) -> list[str]:
        return [*scores, *(f"{s}_{b}" for s in scores for b in self.baseline_names)]

    @property
    def baseline_names(self) -> list[str]:
        """The trivial predictors this target and value distribution have (module docstring)."""
        names = {"onehot": ["nothing", "cutoff"], "topk": ["nothing", "cutoff"]}
        names |= {"argmax": ["chance"], "second": ["chance", "cutoff"], "max": ["prior"]}
        closed = self.channels == 1 and self.values != "integers"
        return [b for b in names.get(self.target, []) if closed or b in ("nothing", "chance")]

    def _quantile(self, q: float) -> float:
        """The ``q``-quantile of one element's value (one channel, uniform or normal values)."""
        if q <= 0:
            return -math.inf
        if self.values == "uniform":
            return self.low + (self.high - self.low) * q
        return statistics.NormalDist().inv_cdf(q)

    def baselines(self, batch: Mapping[str, Tensor]) -> dict[str, MetricArgs]:
        """The scores of the trivial predictors on ``batch``, named ``<score>_<baseline>``."""
        score, y, mask = self.sampler.score(batch["x"]), batch["y"], batch["mask"]
        n = (self.n_min + self.n_max) / 2
        k = self.k if self.target == "topk" else 1
        found: dict[str, MetricArgs] = {}
        for name in self.baseline_names:
            if name == "prior":
                constant = torch.full_like(y, self._quantile(0.5 ** (1 / n)))
                found["mae_prior"] = (constant, y)
            elif name == "chance":
                found["acc_chance"] = (y.sum(1) / mask.sum(1).clamp(min=1)).to(score.dtype)
            elif name == "nothing":
                found |= _suffixed(_marks(torch.zeros_like(mask), y, mask), name)
            elif self.target == "second":
                below = mask & (score <= self._quantile(1 - k / n))
                among = torch.where(below.any(1, keepdim=True), below, mask)
                found |= _suffixed(_picked(score, among, y), name)
            else:
                found |= _suffixed(_marks(score > self._quantile(1 - k / n), y, mask), name)
        return found

    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        y, mask = batch["y"], batch["mask"]
        if self.target == "max":
            return F.l1_loss(output.squeeze(-1), y)
        logits = output.squeeze(-1)
        if self.target in ("argmax", "second"):
            low = torch.finfo(logits.dtype).min
            total = torch.logsumexp(logits.masked_fill(~mask, low), dim=1)
            on_max = torch.logsumexp(logits.masked_fill(~y, low), dim=1)
            return (total - on_max).mean()
        if self.target == "rank":
            scale = (mask.sum(1, keepdim=True) - 1).clamp(min=1)
            error = (logits - y / scale) ** 2
        else:
            error = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
        return (error * mask).sum() / mask.sum().clamp(min=1)

    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, MetricArgs]:
        """The network's scores on ``batch``; when a trainer validates or tests, also the
        trivial predictors' (:meth:`baselines`), which training steps skip.
        """
        y, mask = batch["y"], batch["mask"]
        logits = output.squeeze(-1)
        if self.target == "max":
            found = {"mae": (logits, y)}
        elif self.target in ("argmax", "second"):
            found = _picked(logits, mask, y)
        elif self.target == "rank":
            found = _marks(targets(logits, mask, "rank")["y"], y, mask)
        else:
            found = _marks(logits > 0, y, mask)
        if self.trainer is not None and not self.trainer.training:
            found |= self.baselines(batch)
        return found


def _picked(scores: Tensor, among: Tensor, y: Tensor) -> dict[str, Tensor]:
    """``acc``: whether the highest of ``scores`` among the elements ``among`` is marked in ``y``."""
    low = torch.finfo(scores.dtype).min
    pick = scores.masked_fill(~among, low).argmax(1, keepdim=True)
    return {"acc": y.gather(1, pick).squeeze(1).to(scores.dtype)}


def _marks(pred: Tensor, y: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """``acc`` (every real element right) and ``element_acc`` (the fraction right) per set."""
    element_ok = (pred.masked_fill(~mask, 0) == y) | ~mask
    count = mask.sum(1).clamp(min=1)
    right = (element_ok & mask).sum(1) / count
    return {"acc": element_ok.all(1).to(right.dtype), "element_acc": right}


def _suffixed(scores: Mapping[str, Tensor], baseline: str) -> dict[str, Tensor]:
    return {f"{name}_{baseline}": value for name, value in scores.items()}
