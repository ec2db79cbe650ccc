"""Local maxima on a ring: a task whose symmetry is the dihedral group, not S_n.

``n`` values sit on a ring of positions (processors on a token ring, houses round a square); the
target marks each position whose value is larger than both of its neighbours. Rotating the ring or
reflecting it moves the marks with the values, but exchanging two non-neighbouring positions does
not: the symmetry is the dihedral group D_n (:func:`symlight.core.groups.dihedral`) of the ``n``
positions, which S_n cannot express. A network equivariant to S_n sees each value and a summary of
the whole set, never which values are neighbours, so it can only guess from the value itself (a
uniform value ``v`` is a local maximum with probability ``v^2``): about 80% of positions right, and
almost no ring entirely right. A D_n-equivariant network (:class:`~symlight.models.GroupLinear`
layers) can compare each value with its neighbours.

Values are uniform on ``[0, 1)``, so ties have probability zero. Training batches are drawn fresh
from a generator seeded by ``seed``, the process rank and the epoch; validation and test rings are
fixed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric, Metric

from symlight.core.groups import dihedral
from symlight.core.rep import Rep

from .base import FreshBatches, SetTask, batch_loader, check_at_least

__all__ = ["RingDataModule", "local_maxima"]


def local_maxima(values: Tensor) -> Tensor:
    """``(B, n)`` bool: True where a value is larger than both ring neighbours.

    >>> local_maxima(torch.tensor([[3.0, 1.0, 2.0, 0.0, 5.0]]))
    tensor([[False, False,  True, False,  True]])
    """
    return (values > values.roll(1, dims=1)) & (values > values.roll(-1, dims=1))


def _batch(batch_size: int, n: int, gen: torch.Generator) -> dict[str, Tensor]:
    values = torch.rand(batch_size, n, generator=gen)
    return {
        "x": values[..., None],
        "mask": torch.ones(batch_size, n, dtype=torch.bool),
        "y": local_maxima(values),
    }


class RingDataModule(SetTask):
    """Values on a ring of ``n`` positions, and which of them are local maxima.

    A local maximum is larger than both of its neighbours on the ring.

    Symmetry: the dihedral group D_n of the positions (rotations and reflections of the ring):
    they move the per-position targets with the values. Not S_n: exchanging two positions that
    are not neighbours changes which values are local maxima. Every ring has exactly ``n``
    elements (the mask is all True). The output representation is ``rep_out = Rep(1, order=1,
    group=dihedral(n))`` (printed ``1x1 @ D_16``), built from ``n``: the CLI links it into the
    model, so the network is built for the ring the data has. Metrics: ``acc``, the fraction of
    rings with every position right, and ``element_acc``, the fraction of positions right.

    >>> RingDataModule(n=20).rep_out
    1x1 @ D_20

    Args:
        n: positions on the ring (at least 3).
        batch_size: rings per batch.
        batches_per_epoch: training batches per epoch (each one freshly drawn).
        val_sets: rings in the validation and in the test set.
        seed: seeds the data and the fixed evaluation rings.

    """

    def __init__(
        self,
        n: int = 16,
        batch_size: int = 128,
        batches_per_epoch: int = 100,
        val_sets: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_at_least(3, n=n)
        check_at_least(
            1, batch_size=batch_size, batches_per_epoch=batches_per_epoch, val_sets=val_sets
        )
        self.save_hyperparameters()
        self.n, self.batch_size, self.val_sets, self.seed = n, batch_size, val_sets, seed
        self.rep_out = Rep(1, order=1, group=dihedral(n))
        self.element_shape = (1,)
        self.train_batches = FreshBatches(self, self._draw_train, batches_per_epoch)

    def metrics(self) -> dict[str, Metric]:
        return {"acc": MeanMetric(), "element_acc": MeanMetric()}

    # -- data ---------------------------------------------------------------------------------
    def _draw_train(self, gen: torch.Generator) -> dict[str, Tensor]:
        return _batch(self.batch_size, self.n, gen)

    def _fixed(self, salt: int) -> list[dict[str, Tensor]]:
        def draw(size: int, gen: torch.Generator) -> dict[str, Tensor]:
            return _batch(size, self.n, gen)

        return self.fixed_batches(draw, self.val_sets, self.batch_size, salt=10_000 + salt)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(self._fixed(salt=0))

    def test_dataloader(self) -> DataLoader:
        return batch_loader(self._fixed(salt=100))

    def predict_dataloader(self) -> DataLoader:
        return batch_loader(self._fixed(salt=200))

    # -- objective ----------------------------------------------------------------------------
    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        logits = output.squeeze(-1)
        return F.binary_cross_entropy_with_logits(logits, batch["y"].to(logits.dtype))

    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        logits = output.squeeze(-1)
        right = (logits > 0) == batch["y"]
        return {
            "acc": right.all(1).to(logits.dtype),
            "element_acc": right.to(logits.dtype).mean(1),
        }
