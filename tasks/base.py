"""What a task declares so that one generic LightningModule can train any network on it."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset
from torchmetrics import Metric

from symlight.core.symmetry import SetSymmetry

__all__ = ["SEED_STRIDE", "FreshBatches", "MetricArgs", "SetTask", "batch_loader"]

SEED_STRIDE = 1_000_003
"""Spacing between the seeds of a task's random streams (training epochs and ranks, fixed sets)."""

MetricArgs = Tensor | tuple[Tensor, ...]
"""The arguments of one metric's ``update``: a tensor, or a tuple such as ``(preds, target)``."""

_DECLARED = {
    "symmetry": "a symlight.core.symmetry.SetSymmetry, e.g. SetSymmetry(inputs={'x': 1}, out_order=1)",
    "element_shape": "the shape of one element of batch['x'], e.g. (3,) for vectors of 3 "
    "numbers or (1, 8, 8) for 8x8 grey images",
    "out_channels": "the channels the network returns per output entry, e.g. 1",
}


class SetTask(L.LightningDataModule, ABC):
    """A task on sets: a LightningDataModule that also declares its symmetry, loss and metrics.

    Batches are dicts of tensors with the set on dim 1: ``x`` (the network input, ``(B, n,
    *element_shape)``), ``mask`` (``(B, n)`` bool, True for real elements) and the targets.
    Subclasses set, in ``__init__`` (so that the CLI can link them into the model before
    ``setup``; a missing one is an error when the task is built):

    - ``symmetry``: which batch tensors permute, and the order of the model output;
    - ``element_shape``: the shape of one element, ``(F,)`` for vectors or ``(C, H, W)`` for
      images (a network config then adds a per-element encoder);
    - ``out_channels``: channels the model returns per output entry;
    - ``val_names`` (optional): a suffix per validation loader (``""`` for the first,
      ``"@n=100"`` for a set-size generalisation loader, ...);

    and implement ``metrics()`` (torchmetrics objects by name), ``loss(output, batch)`` and
    ``evaluate(output, batch)``, which returns the arguments of each metric's ``update``. The
    module clones the metrics for every stage and validation loader, so they are synchronised
    across processes under DDP, and logs them as ``{stage}/{name}{suffix}``. A task that wants
    the fraction of sets it solves returns ``{"acc": MeanMetric()}`` and one value per set.

    Data helpers: ``seed`` seeds everything random; :meth:`fixed_generator` draws fixed
    evaluation sets, the same on every process; a task that draws fresh training batches sets
    ``self.train_batches = FreshBatches(self, draw, length)``, whose epoch counter is then saved in
    checkpoints, so a run resumed from an end-of-epoch checkpoint draws the batches it would have.
    """

    symmetry: SetSymmetry
    element_shape: tuple[int, ...]
    out_channels: int
    val_names: Sequence[str] = ("",)
    seed: int = 0
    train_batches: FreshBatches | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_init(cls.__init__)

    def check_declaration(self) -> None:
        """Raise a TypeError naming the task and the attribute if a declaration is missing or
        malformed; called after ``__init__`` of the most derived task class.
        """
        name = type(self).__name__
        for attr, example in _DECLARED.items():
            if getattr(self, attr, None) is None:
                raise TypeError(f"{name} must set self.{attr} in __init__: {example}")
        if not isinstance(self.symmetry, SetSymmetry):
            raise TypeError(
                f"{name}.symmetry must be a SetSymmetry, got {type(self.symmetry).__name__}: "
                f"{_DECLARED['symmetry']}"
            )
        shape = tuple(self.element_shape) if isinstance(self.element_shape, Sequence) else ()
        if not shape or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise TypeError(
                f"{name}.element_shape must be a non-empty tuple of positive ints, got "
                f"{self.element_shape!r}: {_DECLARED['element_shape']}"
            )
        self.element_shape = shape
        if not isinstance(self.out_channels, int) or self.out_channels < 1:
            raise TypeError(
                f"{name}.out_channels must be a positive int, got {self.out_channels!r}"
            )
        if not list(self.val_names):
            raise TypeError(f"{name}.val_names must name at least one validation loader")

    @property
    def rank(self) -> int:
        """The rank of this process under DDP (0 without a trainer); training streams differ per rank."""
        return self.trainer.global_rank if self.trainer is not None else 0

    def fixed_generator(self, salt: int) -> torch.Generator:
        """A generator for fixed data (validation, test sets): the same on every rank and epoch."""
        return torch.Generator().manual_seed(self.seed + SEED_STRIDE * salt)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.train_batches is None else {"train_epoch": self.train_batches.epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.train_batches is not None and "train_epoch" in state_dict:
            self.train_batches.epoch = int(state_dict["train_epoch"])

    @property
    def out_order(self) -> int:
        """Order of the model output: 0 invariant, 1 per element, 2 per pair."""
        return self.symmetry.out_order

    @property
    def name(self) -> str:
        """Short name used for log folders: the class name without ``DataModule``."""
        return type(self).__name__.removesuffix("DataModule").lower()

    @abstractmethod
    def metrics(self) -> Mapping[str, Metric]:
        """Fresh torchmetrics objects by name (a dict or a ``MetricCollection``)."""

    @abstractmethod
    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """The training objective for the network's ``output`` on ``batch``."""

    @abstractmethod
    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, MetricArgs]:
        """For each name of ``metrics()``, the arguments of that metric's ``update`` on this batch."""


def _checked_init(init):
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self).__init__ is __init__:  # only once, after the most derived __init__
            self.check_declaration()

    return __init__


class FreshBatches(IterableDataset):
    """``length`` freshly drawn training batches per epoch, reproducible per (seed, rank, epoch).

    ``draw(generator)`` returns one batch. Each pass over the dataset is one epoch and advances
    the epoch counter, which the task saves in its checkpoints (see :class:`SetTask`).
    """

    def __init__(self, task: SetTask, draw: Callable[[torch.Generator], Any], length: int) -> None:
        self.task, self.draw, self.length, self.epoch = task, draw, length, 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        t = self.task
        gen = torch.Generator().manual_seed(t.seed + SEED_STRIDE * (1 + t.rank + 64 * self.epoch))
        self.epoch += 1
        for _ in range(self.length):
            yield self.draw(gen)


def batch_loader(batches: Sequence[Mapping[str, Tensor]]) -> DataLoader:
    """A loader over ready-made batches (one item per batch), in order."""
    return DataLoader(list(batches), batch_size=None, shuffle=False)
