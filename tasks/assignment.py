"""Linear assignment: match the rows of a cost matrix to its columns at the least total cost.

Each example is an ``n x n`` cost matrix ``C``: uniform on ``[0, 1)`` (``costs: uniform``), or the
Euclidean distances between two sets of ``n`` points uniform in the unit square (``costs:
euclidean``, workers and jobs on a map). The target is the optimal assignment that
``scipy.optimize.linear_sum_assignment`` finds: for each row, the column it takes.

Symmetry: S_n x S_n. Permuting the rows permutes the target's entries; permuting the columns
relabels the columns the target names; the optimal cost does not change. The network returns one
score per (row, column), a tensor of rep ``1x(1,1)``, and is trained by cross-entropy over each
row's columns and over each column's rows (the optimal assignment is a permutation, so each
column has a row too).

Metrics, per validation size:

- ``row_acc``: the fraction of rows whose highest score is at their optimal column;
- ``gap``: the relative cost gap ``(cost - optimum) / optimum`` of the **greedy decoding** of the
  scores: take the highest remaining score, remove its row and its column, repeat. It is always a
  valid assignment, and only as good as the scores (a Hungarian decoding would solve the problem
  whatever the network learned);
- ``solved``: the fraction of matrices whose greedy decoding is optimal;
- ``baseline_gap``: the same greedy decoding of the negated costs (take the cheapest remaining
  entry): the trivial baseline, logged beside the network's gap.

Each training batch has one size, uniform in ``n_min .. n_max`` (a batch of one size costs
``n^2`` per matrix; mixing sizes within a batch would pad every matrix to the largest);
validation and test matrices are fixed, at ``n`` and at each of ``val_sizes``. :meth:`draw` also
mixes sizes within a batch, padding rows and columns with one mask per set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric, Metric

from symlight.core.rep import Rep

from .base import FreshBatches, MetricArgs, SetTask, batch_loader, check_at_least

__all__ = ["AssignmentDataModule", "Costs", "assignment_cost", "greedy_assignment"]

Costs = Literal["uniform", "euclidean"]


def greedy_assignment(scores: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """The greedy decoding of ``scores`` ``(B, n, n)``: the highest remaining score's row takes
    its column, both are removed, and so on until every real row has a column.

    ``rows`` and ``cols`` are the ``(B, n)`` masks of the real rows and columns (as many of
    each). Returns ``(B, n)``: each real row's column, ``-1`` for padded rows.

    >>> greedy_assignment(torch.tensor([[[5.0, 4.0], [3.0, 0.0]]]), *torch.ones(2, 1, 2).bool())
    tensor([[0, 1]])
    """
    batch, n, _ = scores.shape
    low = torch.finfo(scores.dtype).min
    left = scores.detach().masked_fill(~(rows[:, :, None] & cols[:, None, :]), low)
    picks = torch.full((batch, n), -1, dtype=torch.long, device=scores.device)
    sizes = rows.sum(1)
    every = torch.arange(batch, device=scores.device)
    for step in range(int(sizes.max()) if batch else 0):
        flat = left.flatten(1).argmax(1)
        i, j = flat // n, flat % n
        active = step < sizes
        picks[every[active], i[active]] = j[active]
        left[every, i, :] = low
        left[every, :, j] = low
    return picks


def assignment_cost(costs: Tensor, picks: Tensor) -> Tensor:
    """``(B,)``: the total cost of the assignment ``picks`` (``(B, n)``, -1 for padded rows)."""
    taken = costs.gather(2, picks.clamp(min=0)[:, :, None])[:, :, 0]
    return (taken * (picks >= 0)).sum(1)


class AssignmentDataModule(SetTask):
    """Linear assignment of ``n x n`` cost matrices, symmetric under S_n x S_n (rows and columns
    permute separately, and the target with them).

    Batches: ``x`` ``(B, n, n, 1)`` costs, ``mask`` (one ``(B, n)`` mask for the rows, one for
    the columns), ``y`` ``(B, n)`` the optimal column of each row (-1 when padded), ``opt``
    ``(B,)`` the optimal cost. See the module docstring for metrics and data.

    Args:
        n: size of the main validation and test matrices, and the default training size.
        n_min: smallest training size (default ``n``).
        n_max: largest training size (default ``n``); each batch has one size, uniform in
            ``n_min..n_max``.
        val_sizes: extra validation sets of exactly these sizes (logged as ``@n=50``).
        costs: ``uniform`` on ``[0, 1)``, or ``euclidean`` distances between two sets of points
            uniform in the unit square.
        batch_size: matrices per batch.
        batches_per_epoch: training batches per epoch (each one freshly drawn).
        val_sets: matrices in each validation and test set.
        seed: seeds the data and the fixed evaluation sets.

    """

    def __init__(
        self,
        n: int = 10,
        n_min: int | None = None,
        n_max: int | None = None,
        val_sizes: Sequence[int] = (20, 50),
        costs: Costs = "uniform",
        batch_size: int = 64,
        batches_per_epoch: int = 100,
        val_sets: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        n_min = n if n_min is None else n_min
        n_max = n if n_max is None else n_max
        check_at_least(1, n=n, n_min=n_min, batch_size=batch_size, val_sets=val_sets)
        check_at_least(1, batches_per_epoch=batches_per_epoch)
        if n_min > n_max:
            raise ValueError(f"need n_min <= n_max, got n_min={n_min}, n_max={n_max}")
        if any(size < 1 for size in val_sizes) or len(set(val_sizes)) < len(val_sizes):
            raise ValueError(f"val_sizes must be distinct positive sizes, got {list(val_sizes)}")
        if costs not in ("uniform", "euclidean"):
            raise ValueError(f"costs must be uniform or euclidean, got {costs!r}")
        self.save_hyperparameters()
        self.n, self.n_min, self.n_max, self.costs = n, n_min, n_max, costs
        self.val_sizes = [int(s) for s in val_sizes]
        self.batch_size, self.val_sets, self.seed = batch_size, val_sets, seed

        self.inputs = {"x": (1, 1)}  # rows and columns of the cost matrix
        self.rep_out = Rep(1, order=(1, 1))  # one score per (row, column)
        self.element_shape = (1,)  # one cost per entry
        self.val_names = [""] + [f"@n={s}" for s in self.val_sizes]
        self.train_batches = FreshBatches(self, self._draw_train, batches_per_epoch)

    # -- data ---------------------------------------------------------------------------------
    def draw(self, batch_size: int, n_min: int, n_max: int, gen: torch.Generator) -> dict:
        """A batch of cost matrices of sizes uniform in ``n_min..n_max`` and their optima."""
        sizes = torch.randint(n_min, n_max + 1, (batch_size,), generator=gen)
        n = int(sizes.max())
        if self.costs == "uniform":
            costs = torch.rand(batch_size, n, n, generator=gen)
        else:
            a, b = (
                torch.rand(batch_size, n, 2, generator=gen),
                torch.rand(batch_size, n, 2, generator=gen),
            )
            costs = torch.cdist(a, b)
        mask = torch.arange(n)[None, :] < sizes[:, None]
        costs = costs * (mask[:, :, None] & mask[:, None, :])
        y = torch.full((batch_size, n), -1, dtype=torch.long)
        opt = torch.zeros(batch_size, dtype=costs.dtype)
        matrices = costs.numpy()
        for b, size in enumerate(sizes.tolist()):
            rows, cols = linear_sum_assignment(matrices[b, :size, :size])
            y[b, torch.from_numpy(rows)] = torch.from_numpy(cols.astype(np.int64))
            opt[b] = float(matrices[b, rows, cols].sum())
        return {"x": costs[..., None], "mask": (mask, mask.clone()), "y": y, "opt": opt}

    def _draw_train(self, gen: torch.Generator) -> dict:
        size = int(torch.randint(self.n_min, self.n_max + 1, (1,), generator=gen))
        return self.draw(self.batch_size, size, size, gen)

    def _fixed(self, size: int, salt: int) -> list[dict]:
        def draw(count: int, gen: torch.Generator) -> dict:
            return self.draw(count, size, size, gen)

        return self.fixed_batches(draw, self.val_sets, self.batch_size, salt=10_000 + salt)

    def _evaluation_sets(self, salt: int) -> list[list[dict]]:
        sizes = [self.n, *self.val_sizes]
        return [self._fixed(size, salt + i) for i, size in enumerate(sizes)]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> list[DataLoader]:
        return [batch_loader(b) for b in self._evaluation_sets(salt=0)]

    def test_dataloader(self) -> list[DataLoader]:
        return [batch_loader(b) for b in self._evaluation_sets(salt=100)]

    def predict_dataloader(self) -> DataLoader:
        return batch_loader(self._fixed(self.n, salt=200))

    # -- objective ----------------------------------------------------------------------------
    def metrics(self) -> dict[str, Metric]:
        """Row accuracy, greedy-decoded gap and solve rate, and the trivial baseline's gap."""
        return {name: MeanMetric() for name in ("row_acc", "gap", "solved", "baseline_gap")}

    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """Cross-entropy over each real row's columns and over each real column's rows."""
        scores, y = output[..., 0], batch["y"]
        rows, cols = batch["mask"]
        low = torch.finfo(scores.dtype).min
        real = rows[:, :, None] & cols[:, None, :]
        by_row = torch.log_softmax(scores.masked_fill(~real, low), dim=2)
        by_col = torch.log_softmax(scores.masked_fill(~real, low), dim=1)
        pick = y.clamp(min=0)[:, :, None]
        nll = -(by_row.gather(2, pick) + by_col.gather(2, pick))[:, :, 0] / 2
        return (nll * rows).sum() / rows.sum().clamp(min=1)

    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, MetricArgs]:
        scores, y, costs, opt = output[..., 0], batch["y"], batch["x"][..., 0], batch["opt"]
        rows, cols = batch["mask"]
        low = torch.finfo(scores.dtype).min
        best = scores.masked_fill(~cols[:, None, :], low).argmax(2)
        count = rows.sum(1).clamp(min=1)
        row_acc = ((best == y) & rows).sum(1) / count
        costs = costs.to(opt.dtype)
        cost = assignment_cost(costs, greedy_assignment(scores, rows, cols))
        baseline = assignment_cost(costs, greedy_assignment(-costs, rows, cols))
        scale = opt.clamp(min=torch.finfo(opt.dtype).tiny)
        gap = (cost - opt) / scale
        return {
            "row_acc": row_acc.to(scores.dtype),
            "gap": gap,
            "solved": (gap <= 1e-6).to(opt.dtype),
            "baseline_gap": (baseline - opt) / scale,
        }
