"""What a task declares so that one generic LightningModule can train any network on it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader

from symlight.symmetry import SetSymmetry

__all__ = ["SetTask", "batch_loader"]


class SetTask(L.LightningDataModule, ABC):
    """A task on sets: a LightningDataModule that also declares its symmetry, loss and metrics.

    Batches are dicts of tensors with the set on dim 1: ``x`` (the network input), ``mask``
    (``(B, n)`` bool, True for real elements) and the targets. Subclasses set, in ``__init__``
    (so that the CLI can link them into the model before ``setup``):

    - ``symmetry``: which batch tensors permute and the order of the model output;
    - ``in_features``: channels of each element of ``x``;
    - ``out_features``: channels the model must return per output entry;
    - ``metric_names``: the keys that ``evaluate`` returns;

    and implement ``loss(output, batch)`` and ``evaluate(output, batch)``. The latter returns
    one value per set for each metric (e.g. 1.0 when the set is solved); the module averages them
    with torchmetrics, across processes under DDP. ``val_names`` gives a suffix per validation
    loader (``""`` for the first, ``"@n=100"`` for a set-size generalisation loader, ...).
    """

    symmetry: SetSymmetry
    in_features: int
    out_features: int
    metric_names: Sequence[str]
    val_names: Sequence[str] = ("",)

    @property
    def out_order(self) -> int:
        """Order of the model output: 0 invariant, 1 per element, 2 per pair."""
        return self.symmetry.output_order

    @property
    def name(self) -> str:
        """Short name used for log folders: the class name without ``DataModule``."""
        return type(self).__name__.removesuffix("DataModule").lower()

    @abstractmethod
    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """The training objective for the network's ``output`` on ``batch``."""

    @abstractmethod
    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """One value per set for each name in ``metric_names``."""


def batch_loader(batches: Sequence[Mapping[str, Tensor]]) -> DataLoader:
    """A loader over ready-made batches (one item per batch), in order."""
    return DataLoader(list(batches), batch_size=None, shuffle=False)
