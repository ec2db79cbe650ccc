"""The generic LightningModule: any network, any task that declares its symmetry."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import lightning as L
import torch
from torch import Tensor, nn

from symlight.core.rep import Rep
from symlight.models import EncodedSet, EncoderFactory, SetModule

__all__ = [
    "NetworkFactory",
    "SymmetricModule",
    "attached_trainer",
    "build_network",
    "check_batch",
    "metric_key",
]

NetworkFactory = Callable[[int, int, int], SetModule]
"""Builds a network from ``(in_channels, out_channels, out_order)``, which the task supplies; a
network that takes a ``group`` also gets the task's group (see :func:`build_network`)."""

Stage = Literal["train", "val", "test"]


def check_batch(
    batch: Mapping[str, Tensor],
    key: str = "x",
    element_shape: Sequence[int] | None = None,
    set_axes: int = 1,
) -> None:
    """Raise a ValueError for inputs no network should see: empty sets, elements of the wrong
    shape or non-finite values. ``set_axes`` is the number of set axes before the element's
    own dims (2 for a matrix over two sets).
    """
    x, mask = batch[key], batch.get("mask")
    if x.dim() < 3:
        raise ValueError(
            f"batch[{key!r}] must be (batch, n, ...) with the set on dim 1, got {tuple(x.shape)}"
        )
    if element_shape is not None and tuple(x.shape[1 + set_axes :]) != tuple(element_shape):
        raise ValueError(
            f"batch[{key!r}] has elements of shape {tuple(x.shape[1 + set_axes :])} but the task "
            f"declares element_shape={tuple(element_shape)}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"batch[{key!r}] holds empty sets (n = 0): every set needs an element")
    if torch.isfinite(x).all():  # the usual case, without gathering the real elements
        return
    real = x[mask] if isinstance(mask, Tensor) else x  # over several sets: every entry
    if not torch.isfinite(real).all():
        raise ValueError(f"batch[{key!r}] has NaN or infinite values in real (unpadded) elements")


def build_network(
    net: NetworkFactory,
    encoder: EncoderFactory | None,
    element_shape: Sequence[int],
    rep_out: Rep,
) -> nn.Module:
    """The network for a task whose output has representation ``rep_out``:
    ``net(in_channels, rep_out.channels, rep_out.order)``, under a per-element ``encoder`` when
    one is given (required for elements that are not vectors).

    When the task's group is not S_n (``rep_out.group``, e.g. D_20 on a ring of 20) and ``net``
    takes a ``group`` it was not given, it is built for the task's group. A network built for
    another group is a ValueError naming both; an S_n-equivariant network suits every task (every
    group of the set's positions is a subgroup of S_n).
    """
    shape = tuple(element_shape)
    if encoder is not None:
        encoded = encoder(shape)
        return EncodedSet(encoded, _build_net(net, encoded.out_channels, rep_out))
    if len(shape) != 1:
        raise ValueError(
            f"elements of shape {shape} are not vectors: give a per-element encoder "
            "(--model.init_args.encoder, e.g. symlight.models.ConvEncoder for images)"
        )
    return _build_net(net, shape[0], rep_out)


def _build_net(net: NetworkFactory, in_channels: int, rep_out: Rep) -> nn.Module:
    order, task_group = _order(rep_out), _group(rep_out)
    options = {}
    if task_group is not None and _unset_group(net):
        options["group"] = task_group
    network = net(in_channels, rep_out.channels, order, **options)
    built = getattr(network, "rep_out", None)
    if not isinstance(built, Rep):
        return network
    if built.orders != rep_out.orders:
        raise ValueError(
            f"{type(network).__name__} returns {built} but the task needs {rep_out}: order "
            f"{_order(built)} instead of {order}"
        )
    if _group(built) is not None and built.groups != rep_out.groups:
        raise ValueError(
            f"{type(network).__name__} is built for the group {_group(built)} but the task's data "
            f"has {rep_out}: drop the network's group (it comes from the data) or build it for "
            f"{task_group or 'S_n'}"
        )
    return network


def _order(rep: Rep) -> int | tuple[int, ...]:
    """The order of ``rep`` over its one set, or its orders over several."""
    return rep.order if rep.num_sets == 1 else rep.orders


def _group(rep: Rep):
    """The group of ``rep`` over its one set; over several, the groups, or None when all are
    S_n.
    """
    if rep.num_sets == 1:
        return rep.group
    return rep.groups if any(g is not None for g in rep.groups) else None


def _set_axes(net: nn.Module) -> int:
    """The set axes of the network's input (2 for a matrix over two sets); 1 when untyped."""
    rep_in = getattr(net, "rep_in", None)
    return rep_in.set_axes if isinstance(rep_in, Rep) else 1


def _unset_group(net: NetworkFactory) -> bool:
    """True when ``net`` takes a ``group`` and none was configured.

    From a config, ``net`` is a ``functools.partial`` holding every ``init_args`` value of the
    network class (``group=None`` when the config leaves it out); from Python, any callable.
    """
    if isinstance(net, functools.partial) and "group" in net.keywords:
        return net.keywords["group"] is None
    try:
        parameter = inspect.signature(net).parameters.get("group")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default in (None, inspect.Parameter.empty)


class SymmetricModule(L.LightningModule):
    """Trains ``net`` on whatever task the DataModule declares; as equivariant as ``net``.

    The task (a :class:`symlight.tasks.SetTask`) supplies the loss, the metrics and the data's
    symmetry; the CLI links the task's ``element_shape`` and its output representation
    ``rep_out`` (channels, order and group, e.g. ``1x1 @ D_20``), and the network is built from
    them (see :func:`build_network`): the data's size and group are never typed twice.

    Args:
        net: network class and its hyper-parameters, built as ``net(in_channels, out_channels,
            out_order)``; ``in_channels`` is the element size, or the encoder's ``out_channels``.
        encoder: per-element encoder class and its hyper-parameters, built as
            ``encoder(element_shape)`` and applied with shared weights to every real element
            (images: ``symlight.models.ConvEncoder``). Optional for vector elements.
        element_shape: shape of one element of ``x`` (linked from the data).
        rep_out: representation of the output, a :class:`~symlight.core.rep.Rep` or its printed
            form (linked from the data).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        schedule: ``constant``, ``onecycle`` (warm-up then cosine annealing over the whole run)
            or ``cosine`` (annealing to zero over the whole run).

    """

    def __init__(
        self,
        net: NetworkFactory,
        encoder: EncoderFactory | None = None,
        element_shape: tuple[int, ...] = (1,),
        rep_out: str = "1x1",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        schedule: Literal["constant", "onecycle", "cosine"] = "constant",
    ) -> None:
        super().__init__()
        if not lr > 0:
            raise ValueError(f"lr must be a positive learning rate (e.g. 1e-3), got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.rep_out = Rep.parse(rep_out)
        self.save_hyperparameters()
        self.hparams.rep_out = str(self.rep_out)  # plain text in checkpoints and hparams.yaml
        self.net = build_network(net, encoder, element_shape, self.rep_out)
        self.metrics = nn.ModuleDict()

    # -- the task ---------------------------------------------------------------------------
    @property
    def task(self):
        """The task DataModule this module is trained on."""
        datamodule = getattr(attached_trainer(self), "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "loss"):
            raise RuntimeError(
                "SymmetricModule needs a symlight task (a SetTask DataModule) passed to the Trainer"
            )
        return datamodule

    def setup(self, stage: str) -> None:
        task = self.task
        declared = dict(task.metrics().items())
        for stage_name in ("train", "val", "test"):
            for suffix in [""] if stage_name == "train" else task.val_names:
                for name, metric in declared.items():
                    key = metric_key(stage_name, name, suffix)
                    if key not in self.metrics:
                        self.metrics[key] = metric.clone()

    # -- steps ------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        return self.net(batch["x"], mask=batch.get("mask"))

    def _suffix(self, stage: Stage, dataloader_idx: int) -> str:
        if stage == "train":
            return ""
        names = self.task.val_names
        if dataloader_idx >= len(names):
            raise ValueError(
                f"{type(self.task).__name__} has {len(names)} val_names {list(names)} but "
                f"{stage} loader {dataloader_idx} exists: give one suffix per loader"
            )
        return names[dataloader_idx]

    def _shared_step(
        self, batch: Mapping[str, Tensor], stage: Stage, dataloader_idx: int = 0, log: bool = True
    ) -> Tensor:
        task = self.task
        check_batch(batch, element_shape=self.hparams.element_shape, set_axes=_set_axes(self.net))
        output = self(batch)
        loss = task.loss(output, batch)
        suffix = self._suffix(stage, dataloader_idx)
        size = batch["x"].shape[0]
        if log:
            self.log(
                f"{stage}/loss{suffix}",
                loss,
                batch_size=size,
                add_dataloader_idx=False,
                sync_dist=stage != "train",
                prog_bar=stage == "train" or not suffix,
            )
        self.update_metrics(task.evaluate(output.detach(), batch), stage, suffix, log=log)
        return loss

    def update_metrics(
        self, values: Mapping, stage: Stage, suffix: str = "", log: bool = True
    ) -> None:
        """Feed each metric its ``update`` arguments and log it as ``{stage}/{name}{suffix}``;
        with ``log=False`` (a training step whose values no logger sees) only update it.
        """
        for name, args in values.items():
            key = metric_key(stage, name, suffix)
            if key not in self.metrics:
                raise KeyError(
                    f"{type(self.task).__name__}.evaluate returned {name!r}, which is not one of "
                    f"its metrics() ({', '.join(self.task.metrics())}): add it to metrics()"
                )
            metric = self.metrics[key]
            args = args if isinstance(args, tuple) else (args,)
            if not log:
                metric.update(*args)  # still counts towards the epoch's value
                continue
            if stage == "train":
                metric(*args)
            else:
                metric.update(*args)
            self.log(
                f"{stage}/{name}{suffix}",
                metric,
                add_dataloader_idx=False,
                on_step=stage == "train",
                on_epoch=True,
                prog_bar=not suffix,
            )

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        # Step values reach the logger every `log_every_n_steps` steps: calling self.log only on
        # those steps (and on each epoch's first batch, which registers the epoch's metrics)
        # saves most of what Lightning adds per step to a small network. Metrics still see
        # every batch.
        trainer = self.trainer
        log = (
            batch_idx == 0
            or bool(trainer.fast_dev_run)
            or (trainer.global_step + 1) % trainer.log_every_n_steps == 0
            or trainer.should_stop
        )
        return self._shared_step(batch, "train", log=log)

    def validation_step(
        self, batch: Mapping[str, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        return self._shared_step(batch, "val", dataloader_idx)

    def test_step(
        self, batch: Mapping[str, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        return self._shared_step(batch, "test", dataloader_idx)

    def predict_step(
        self, batch: Mapping[str, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        check_batch(batch, element_shape=self.hparams.element_shape, set_axes=_set_axes(self.net))
        return self(batch)

    # -- optimisation -----------------------------------------------------------------------
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        trainer = attached_trainer(self)
        task, saved_task = getattr(trainer, "datamodule", None), _saved_task(checkpoint)
        if task is not None and saved_task and saved_task != type(task).__name__:
            raise ValueError(
                f"the checkpoint was trained on the task {saved_task} but this run's task is "
                f"{type(task).__name__}: use a checkpoint of {type(task).__name__}"
            )
        saved = checkpoint.get("hyper_parameters", {})
        for key in ("element_shape", "rep_out"):
            if key in saved and _plain(saved[key]) != _plain(self.hparams[key]):
                raise ValueError(
                    f"the checkpoint was trained with {key}={saved[key]} but this run's data gives "
                    f"{key}={self.hparams[key]}: use the data arguments of the training run "
                    "(its config.yaml beside the checkpoints)"
                )
        if self.hparams.schedule != "onecycle" or attached_trainer(self) is None:
            return
        if self.trainer.state.fn != "fit" or not checkpoint.get("lr_schedulers"):
            return
        planned = checkpoint["lr_schedulers"][0].get("total_steps")
        steps = int(self.trainer.estimated_stepping_batches)
        if planned is not None and planned != steps:
            epochs, per_epoch = self.trainer.max_epochs, self.trainer.num_training_batches
            own = (
                f"--trainer.max_epochs {planned // per_epoch}"
                if epochs and epochs > 0 and per_epoch and planned % per_epoch == 0
                else f"--trainer.max_steps {planned}"
            )
            raise ValueError(
                f"the checkpoint's one-cycle schedule spans {planned} steps but this run has {steps}: "
                f"a one-cycle run resumes with its own length and cannot be extended: add {own}"
            )

    def configure_optimizers(self):
        hp = self.hparams
        params = list(self.parameters())
        # one fused kernel for every parameter, where torch has it: the same update, several
        # times faster than a loop over the tensors for a small network
        fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
        optimizer = torch.optim.AdamW(
            params, lr=hp.lr, weight_decay=hp.weight_decay, fused=fused or None
        )
        if hp.schedule == "constant":
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        if hp.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=hp.lr, total_steps=steps
            )
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The Trainer ``module`` is attached to, or None."""
    try:
        return module.trainer
    except RuntimeError:  # "... is not attached to a `Trainer`"
        return None


def _saved_task(checkpoint: Mapping) -> str | None:
    """The class name of the task a checkpoint was trained on, where the checkpoint says."""
    record = checkpoint.get("symlight")
    path = record.get("task") if isinstance(record, Mapping) else None
    data = checkpoint.get("datamodule_hyper_parameters")
    if path is None and isinstance(data, Mapping):
        path = data.get("_class_path")
    return str(path).rpartition(".")[2] if path else None


def _plain(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def metric_key(stage: str, name: str, suffix: str) -> str:
    """The key of a metric in ``SymmetricModule.metrics`` (a ModuleDict key has no dots)."""
    return f"{stage}_{name}{suffix}".replace(".", "_")
