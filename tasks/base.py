"""What a task declares so that one generic LightningModule can train any network on it."""

from __future__ import annotations

import functools
import numbers
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset
from torchmetrics import Metric

from symlight.core.rep import Rep
from symlight.core.seeding import stream_seed
from symlight.core.symmetry import SetSymmetry

__all__ = [
    "FreshBatches",
    "MetricArgs",
    "SetTask",
    "batch_loader",
    "check_at_least",
    "policy_checkpoint",
    "positive_ints",
]

T = TypeVar("T")


MetricArgs = Tensor | tuple[Tensor, ...]
"""The arguments of one metric's ``update``: a tensor, or a tuple such as ``(preds, target)``."""

_DECLARED = {
    "rep_out": "a symlight.core.rep.Rep, the channels x order of the network output and the "
    "task's group, e.g. Rep(1, order=1) for one logit per element, Rep(1, order=0) for one value "
    "per set, Rep(1, order=1, group=dihedral(16)) for one logit per position of a ring of 16",
    "element_shape": "the shape of one element of batch['x'], e.g. (3,) for vectors of 3 "
    "numbers or (1, 8, 8) for 8x8 grey images",
}


class SetTask(L.LightningDataModule, ABC):
    """A task on sets: a LightningDataModule that also declares its symmetry, loss and metrics.

    Batches are dicts of tensors with the set on dim 1: ``x`` (the network input, ``(B, n,
    *element_shape)``), ``mask`` (``(B, n)`` bool, True for real elements) and the targets.
    Subclasses set, in ``__init__`` (so that the CLI can link them into the model before
    ``setup``; a missing one is an error when the task is built):

    - ``rep_out``: a :class:`~symlight.core.rep.Rep`, the channels x order of the network output
      and the group of the task (``None``: S_n of any set size), e.g. ``Rep(1, order=1)`` for one
      logit per element or ``Rep(1, order=1, group=dihedral(n))`` on a ring of ``n``;
    - ``element_shape``: the shape of one element, ``(F,)`` for vectors or ``(C, H, W)`` for
      images (a network config then adds a per-element encoder);
    - ``inputs`` (optional, ``{"x": 1}`` by default): the batch keys that permute with the set
      and their orders (the mask always permutes); over several independent sets an order per
      set (``{"x": (1, 1)}`` for a matrix whose rows and columns permute), with ``rep_out``
      over as many sets and ``mask`` a tuple of one ``(B, n_s)`` mask per set;
    - ``val_names`` (optional): a suffix per validation loader (``""`` for the first,
      ``"@n=100"`` for a set-size generalisation loader, ...);

    and implement ``metrics()`` (torchmetrics objects by name), ``loss(output, batch)`` and
    ``evaluate(output, batch)``, which returns the arguments of each metric's ``update``. The
    module clones the metrics for every stage and validation loader, so they are synchronised
    across processes under DDP, and logs them as ``{stage}/{name}{suffix}``. A task that wants
    the fraction of sets it solves returns ``{"acc": MeanMetric()}`` and one value per set.

    Derived from the declaration, read-only: ``symmetry`` (the
    :class:`~symlight.core.symmetry.SetSymmetry` that the equivariance check samples),
    ``out_channels`` and ``out_order``.

    Data helpers: ``seed`` seeds everything random; :meth:`fixed_generator` draws fixed
    evaluation sets, the same on every process, and :meth:`fixed_batches` deals them in batches;
    a task that draws fresh training batches sets ``self.train_batches = FreshBatches(self, draw,
    length)``, whose position (the epoch, and the batches of it already drawn) is then saved in
    checkpoints, so a run resumed from any checkpoint, mid-epoch included, draws the batches it
    would have.
    """

    rep_out: Rep
    element_shape: tuple[int, ...]
    inputs: Mapping[str, int] = MappingProxyType({"x": 1})
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
        rep = self.rep_out
        if not isinstance(rep, Rep):
            raise TypeError(
                f"{name}.rep_out must be a Rep, got {type(rep).__name__} {rep!r}: "
                f"{_DECLARED['rep_out']}"
            )
        sets = _num_sets(self.inputs)
        if rep.num_sets != sets:
            over = "one set" if sets == 1 else f"{sets} sets, as its inputs {dict(self.inputs)} are"
            raise TypeError(
                f"{name}.rep_out must be over {over}, got {rep} over {rep.num_sets} sets"
            )
        try:
            self.symmetry  # noqa: B018  (the inputs are checked as the symmetry is built)
        except (ValueError, TypeError, AttributeError) as error:
            raise TypeError(
                f"{name}.inputs must map batch keys to their orders 1 or 2, e.g. {{'x': 1}}, got "
                f"{self.inputs!r} ({error})"
            ) from None
        shape = tuple(self.element_shape) if isinstance(self.element_shape, Sequence) else ()
        if not shape or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise TypeError(
                f"{name}.element_shape must be a non-empty tuple of positive ints, got "
                f"{self.element_shape!r}: {_DECLARED['element_shape']}"
            )
        self.element_shape = shape
        if not list(self.val_names):
            raise TypeError(f"{name}.val_names must name at least one validation loader")

    # -- derived from rep_out -------------------------------------------------------------------
    @property
    def symmetry(self) -> SetSymmetry:
        """The batch keys that permute (``inputs``), the output order and the group of ``rep_out``."""
        rep = self.rep_out
        if rep.num_sets > 1:
            return SetSymmetry(dict(self.inputs), out_order=rep.orders, group=rep.groups)
        return SetSymmetry(dict(self.inputs), out_order=rep.order, group=rep.group)

    @symmetry.setter
    def symmetry(self, value: Any) -> None:
        raise _derived(self, "symmetry")

    @property
    def out_channels(self) -> int:
        """Channels the network returns per output entry: ``rep_out.channels``."""
        return self.rep_out.channels

    @out_channels.setter
    def out_channels(self, value: Any) -> None:
        raise _derived(self, "out_channels")

    @property
    def out_order(self) -> int | tuple[int, ...]:
        """Order of the network output, ``rep_out.order``: 0 invariant, 1 per element, 2 per pair
        (one per set over several sets, ``rep_out.orders``).
        """
        rep = self.rep_out
        return rep.orders if rep.num_sets > 1 else rep.order

    @out_order.setter
    def out_order(self, value: Any) -> None:
        raise _derived(self, "out_order")

    # -- data helpers -----------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        """The rank of this process under DDP (0 without a trainer); training streams differ per rank."""
        return self.trainer.global_rank if self.trainer is not None else 0

    def fixed_generator(self, salt: int) -> torch.Generator:
        """A generator for fixed data (validation, test sets): the same on every rank and epoch."""
        return torch.Generator().manual_seed(stream_seed(self.seed, salt))

    def fixed_batches(
        self, draw: Callable[[int, torch.Generator], T], count: int, batch_size: int, salt: int
    ) -> list[T]:
        """``count`` fixed sets in batches of at most ``batch_size``, each ``draw(size,
        generator)`` with one :meth:`fixed_generator` ``(salt)``: the same on every rank and epoch.
        """
        gen = self.fixed_generator(salt)
        return [draw(min(batch_size, count - start), gen) for start in range(0, count, batch_size)]

    def state_dict(self) -> dict[str, Any]:
        if self.train_batches is None:
            return {}
        trainer = self.trainer
        per_epoch = trainer.num_training_batches if trainer is not None else float("inf")
        return self.train_batches.position(per_epoch)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.train_batches is not None and "train_epoch" in state_dict:
            self.train_batches.epoch = int(state_dict["train_epoch"])
            self.train_batches.start = int(state_dict.get("train_batch", 0))

    @abstractmethod
    def metrics(self) -> Mapping[str, Metric]:
        """Fresh torchmetrics objects by name (a dict or a ``MetricCollection``)."""

    @abstractmethod
    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """The training objective for the network's ``output`` on ``batch``."""

    @abstractmethod
    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, MetricArgs]:
        """For each name of ``metrics()``, the arguments of that metric's ``update`` on this batch."""


def _num_sets(inputs: Mapping[str, Any]) -> int:
    """How many sets the inputs are over: the length of their orders (1 for a bare order)."""
    orders = next(iter(inputs.values()), 1)
    return len(orders) if isinstance(orders, (tuple, list)) else 1


def _derived(task: SetTask, attr: str) -> TypeError:
    return TypeError(
        f"{type(task).__name__}.{attr} is derived from rep_out: set self.rep_out = Rep(channels, "
        "order, group) instead"
    )


def policy_checkpoint(path: str | Path, key: str, what: str, saved_by: str, config: str) -> Any:
    """The checkpoint at ``path``, which a policy module records under ``key``.

    A missing file is a FileNotFoundError. A file torch cannot read is a ValueError naming it; so
    is a checkpoint without ``key`` (another task's, say), naming also what it holds and the
    command that trains ``what``. The file is unpickled in full (it records how to rebuild its
    network): load only files you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:  # not a file torch wrote
        raise ValueError(f"{str(path)!r} is not a checkpoint torch can read: {error}") from None
    if not isinstance(checkpoint, Mapping) or key not in checkpoint:
        raise ValueError(
            f"{str(path)!r} is not a {what} checkpoint: it holds {_held(checkpoint)}, not a "
            f"{saved_by}; train one with `python -m symlight fit --config {config}`"
        )
    return checkpoint


def _held(checkpoint: Any) -> str:
    """What a checkpoint holds, in a few words: its task, else its network."""
    if not isinstance(checkpoint, Mapping):
        return f"a {type(checkpoint).__name__}"
    hparams = checkpoint.get("hyper_parameters") or {}
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    tasks = [str(h["_class_path"]) for h in (data, hparams) if h.get("_class_path")]
    tasks += [key for key in checkpoint if isinstance(key, str) and key.endswith("DataModule")]
    if tasks:
        return f"a model of the task {tasks[0].rsplit('.', 1)[-1]}"
    net = hparams.get("net")
    net = getattr(net, "func", net)  # a functools.partial of the network's class
    if hasattr(net, "__name__"):
        return f"the network {net.__name__}"
    return "no policy"


def positive_ints(value: int | Sequence[int], name: str) -> list[int]:
    """``value`` as a non-empty list of positive integers (one integer or a list of them).

    >>> positive_ints(5, "k"), positive_ints([3, 4], "agents")
    ([5], [3, 4])
    >>> positive_ints([0], "agents")
    Traceback (most recent call last):
    ...
    ValueError: agents must be a positive integer or a list of them, got [0]
    """
    values = [value] if isinstance(value, int) else [int(v) for v in value]
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{name} must be a positive integer or a list of them, got {value!r}")
    return values


def check_at_least(least: int, /, **values: Any) -> None:
    """Raise a ValueError naming the first of ``values`` that is not an integer ``>= least``.

    >>> check_at_least(1, batch_size=64, val_sets=0)
    Traceback (most recent call last):
    ...
    ValueError: val_sets must be at least 1, got 0
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value!r}")


def _checked_init(init):
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self).__init__ is __init__:  # only once, after the most derived __init__
            self.check_declaration()

    return __init__


class FreshBatches(IterableDataset):
    """``length`` freshly drawn training batches per epoch, reproducible per (seed, rank, epoch).

    ``draw(generator)`` returns one batch. Each pass over the dataset is one epoch, drawn with one
    generator; the task saves where the stream stands (:meth:`position`) in its checkpoints, and a
    pass after a resume from the middle of an epoch draws again, without yielding them, the
    batches that were trained on before, so it goes on with exactly the batches the run would
    have had.
    """

    def __init__(self, task: SetTask, draw: Callable[[torch.Generator], Any], length: int) -> None:
        self.task, self.draw, self.length = task, draw, length
        self.epoch = 0
        """The epoch the next pass draws."""
        self.start = 0
        """The batch the next pass starts at: 0, or the next batch of a resumed epoch."""
        self.drawn = 0
        """Batches of the latest pass handed out so far (those skipped on a resume included)."""

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        t = self.task
        epoch, start = self.epoch, self.start
        self.epoch, self.start, self.drawn = epoch + 1, 0, start
        gen = torch.Generator().manual_seed(stream_seed(t.seed, 1 + t.rank + 64 * epoch))
        for _ in range(start):
            self.draw(gen)
        while self.drawn < self.length:
            batch = self.draw(gen)
            self.drawn += 1
            yield batch

    def position(self, per_epoch: float = float("inf")) -> dict[str, int]:
        """Where the stream stands, as the task's checkpoint state: ``train_epoch``, the epoch
        the next pass draws, and ``train_batch``, the batch it starts at (left out when 0). A
        pass that stopped before ``min(length, per_epoch)`` batches (``per_epoch``: the
        trainer's batches per epoch) is an epoch in progress, continued by the next pass.
        """
        epoch, start = self.epoch, self.start
        if 0 < self.drawn < min(self.length, per_epoch):
            epoch, start = epoch - 1, self.drawn
        return {"train_epoch": epoch, **({"train_batch": start} if start else {})}


def batch_loader(batches: Sequence[Mapping[str, Tensor]]) -> DataLoader:
    """A loader over ready-made batches (one item per batch), in order."""
    return DataLoader(list(batches), batch_size=None, shuffle=False)
