"""SetAnomalyDataModule: sets of images, all but one sharing a property; find the odd one out.

The network returns one logit per element (``rep_out = Rep(1, order=1)``) and the target is the
position of the odd one (``y``: ``(B, n)`` bool). See :mod:`symlight.tasks.anomaly` for the loss,
the metrics, the sources and the splits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchmetrics import Metric
from torchmetrics.aggregation import MeanMetric
from torchmetrics.classification import BinaryAUROC

from symlight.core.rep import Rep

from ..base import FreshBatches, SetTask, check_at_least
from .augment import shift_images
from .pool import ImagePool, SetIndex, split_pools
from .sources import FILE_SIZE, Source, image_shape, load_source

__all__ = ["SetAnomalyDataModule"]


class _FixedSets(Dataset):
    """Fixed sets, stored as positions and turned into images batch by batch."""

    def __init__(self, pool: ImagePool, batches: list[SetIndex]) -> None:
        self.pool, self.batches = pool, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        b = self.batches[i]
        return {"x": self.pool.images(b.positions), "mask": torch.ones_like(b.y), "y": b.y}


# -- the task -------------------------------------------------------------------------------------


class SetAnomalyDataModule(SetTask):
    """Sets of images, all but one sharing a property: find the odd one out.

    Symmetry: permuting a set's images permutes the per-element target (the odd one's position)
    the same way; the network returns one logit per element (``rep_out = Rep(1, order=1)``). See
    :mod:`symlight.tasks.anomaly` for sources, splits and metrics.

    Args:
        source: ``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``, ``celeba`` or ``folder``.
        root: folder of the dataset files (not used by ``digits``).
        download: let torchvision download a missing dataset (in ``prepare_data``).
        image_size: resize images to ``image_size`` x ``image_size`` (``celeba`` and ``folder``
            default to 64; the others keep their native size unless given).
        set_size: images per training set (and per set of the first validation loader).
        val_sizes: extra validation and test sets of exactly these sizes.
        batch_size: sets per batch.
        batches_per_epoch: training batches per epoch (each one freshly drawn).
        val_sets: sets in each validation and test set.
        val_fraction: fraction of the training images held out for validation.
        test_fraction: fraction of the images held out for testing when the source has no test
            split (``digits``, ``folder``).
        shift: training images are translated by up to this many pixels (0: no augmentation).
        seed: seeds the splits, the fixed evaluation sets and the training sets.

    """

    def __init__(
        self,
        source: Source = "digits",
        root: str = "data",
        download: bool = False,
        image_size: int | None = None,
        set_size: int = 16,
        val_sizes: Sequence[int] = (8, 64),
        batch_size: int = 64,
        batches_per_epoch: int = 100,
        val_sets: int = 1000,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        shift: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in Source.__args__:
            raise ValueError(f"source must be one of {', '.join(Source.__args__)}; got {source!r}")
        if set_size < 2 or any(s < 2 for s in val_sizes):
            raise ValueError(
                f"sets need at least 2 images to have an odd one, got set_size={set_size}, "
                f"val_sizes={list(val_sizes)}"
            )
        if len({set_size, *val_sizes}) < 1 + len(val_sizes):
            raise ValueError(
                f"val_sizes must be distinct and differ from set_size={set_size}, got {list(val_sizes)}"
            )
        check_at_least(
            1, batch_size=batch_size, batches_per_epoch=batches_per_epoch, val_sets=val_sets
        )
        if not (
            0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1
        ):
            raise ValueError(
                "need 0 < val_fraction, test_fraction and val_fraction + test_fraction < 1, got "
                f"{val_fraction}, {test_fraction}"
            )
        if shift < 0 or (image_size is not None and image_size < 1):
            raise ValueError(f"need shift >= 0 and image_size >= 1, got {shift}, {image_size}")
        self.save_hyperparameters()
        self.source, self.root, self.download = source, root, download
        self.image_size = image_size
        if image_size is None and source in ("celeba", "folder"):
            self.image_size = FILE_SIZE
        self.set_size, self.val_sizes = set_size, [int(s) for s in val_sizes]
        self.batch_size, self.batches_per_epoch, self.val_sets = (
            batch_size,
            batches_per_epoch,
            val_sets,
        )
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.shift, self.seed = shift, seed

        self.rep_out = Rep(1, order=1)
        self.element_shape = image_shape(source, self.image_size)
        self.val_names = [""] + [f"@n={s}" for s in self.val_sizes]
        self._pools: dict[str, ImagePool] | None = None
        self.train_batches = FreshBatches(self, self._draw_train, batches_per_epoch)
        self._fixed: dict[tuple[str, int], _FixedSets] = {}

    # -- data ---------------------------------------------------------------------------------
    def _draw_train(self, gen: torch.Generator) -> dict[str, Tensor]:
        pool = self.pools["train"]
        sets = pool.draw_sets(self.batch_size, self.set_size, gen)
        x = shift_images(pool.images(sets.positions), self.shift, gen)
        return {"x": x, "mask": torch.ones_like(sets.y), "y": sets.y}

    @property
    def pools(self) -> dict[str, ImagePool]:
        """The disjoint ``train``, ``val`` and ``test`` image pools (loaded on first use)."""
        if self._pools is None:
            pools = load_source(self.source, self.root, False, self.image_size)
            self._pools = split_pools(pools, self.val_fraction, self.test_fraction, self.seed)
        return self._pools

    def prepare_data(self) -> None:
        if self.download and self.source != "digits":
            load_source(self.source, self.root, True, self.image_size)

    def setup(self, stage: str) -> None:
        self.pools  # noqa: B018  (load now, so a missing dataset fails before training)

    def fixed_sets(self, split: str, n: int) -> _FixedSets:
        """The fixed sets of size ``n`` drawn from the ``split`` pool (``val`` or ``test``)."""
        key = (split, n)
        if key not in self._fixed:
            salt = {"val": 0, "test": 100, "predict": 200}[split] + n
            pool = self.pools["test" if split == "predict" else split]

            def draw(size: int, gen: torch.Generator) -> SetIndex:
                return pool.draw_sets(size, n, gen)

            batches = self.fixed_batches(draw, self.val_sets, self.batch_size, salt=10_000 + salt)
            self._fixed[key] = _FixedSets(pool, batches)
        return self._fixed[key]

    def _loaders(self, split: str) -> list[DataLoader]:
        sizes = [self.set_size, *self.val_sizes]
        return [DataLoader(self.fixed_sets(split, n), batch_size=None) for n in sizes]

    def train_dataloader(self) -> DataLoader:
        self.pools  # noqa: B018
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> list[DataLoader]:
        return self._loaders("val")

    def test_dataloader(self) -> list[DataLoader]:
        return self._loaders("test")

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.fixed_sets("predict", self.set_size), batch_size=None)

    # -- objective ----------------------------------------------------------------------------
    def metrics(self) -> dict[str, Metric]:
        return {"acc": MeanMetric(), "auroc": BinaryAUROC()}

    @staticmethod
    def _log_probs(output: Tensor, mask: Tensor) -> Tensor:
        logits = output.squeeze(-1).masked_fill(~mask, torch.finfo(output.dtype).min)
        return torch.log_softmax(logits, dim=1)

    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        log_p = self._log_probs(output, batch["mask"])
        return -(log_p * batch["y"]).sum(1).mean()

    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Any]:
        y, mask = batch["y"], batch["mask"]
        log_p = self._log_probs(output, mask)
        pick = log_p.argmax(1, keepdim=True)
        correct = y.gather(1, pick).squeeze(1).to(output.dtype)
        return {"acc": correct, "auroc": (log_p.exp()[mask], y[mask].long())}
