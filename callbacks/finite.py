"""FiniteCheck: a fit stops at the first NaN or infinite training value, before any checkpoint
can hold it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

__all__ = ["FiniteCheck", "NonFiniteError"]


class NonFiniteError(FloatingPointError):
    """A training value (an input, the loss, the weights) is NaN or infinite.

    ``str()`` is one line: what it is, its value, the step and epoch, and the newest checkpoint
    written before it (or that there is none).

    Args:
        what: the value, e.g. ``"the training loss"`` or ``"the batch's x"``.
        value: how it is not finite: ``"nan"``, ``"inf"``, ``"-inf"``.
        step: the training step (optimizer steps done before it, as in checkpoints).
        epoch: the epoch of that step.
        checkpoint: the newest checkpoint on disk, if any.
        hint: the end of the line, e.g. ``"; check the data"``.

    """

    def __init__(
        self,
        what: str,
        value: str,
        step: int,
        epoch: int,
        checkpoint: str | None = None,
        hint: str = "",
    ) -> None:
        self.what, self.value, self.step, self.epoch = what, value, step, epoch
        self.checkpoint = checkpoint
        kept = (
            f"the last good checkpoint is {checkpoint}{_step_of(checkpoint)}"
            if checkpoint
            else "no checkpoint was written before it"
        )
        super().__init__(f"{what} is {value} at step {step} (epoch {epoch}); {kept}{hint}")


class FiniteCheck(Callback):
    """Stops a fit at the first NaN or infinite training value, and never lets a checkpoint hold
    one. It looks at values, not at their symmetry: any network, any task.

    - Before each training step, the batch: its floating-point tensors, over their real elements
      where the batch has a ``mask`` ``(B, n)``.
    - After each training step, before any checkpoint of that step is written: its loss.
    - Before any checkpoint is written, and before each validation of the fit: the weights (an
      infinite gradient spoils them under a finite loss).

    The first value that is not finite raises :class:`NonFiniteError` naming it, its step and
    epoch, and the newest checkpoint, written before and left as it is. Under DDP the processes
    decide together, so they all stop at the same step.
    """

    LOSS_HINT = "; try a smaller learning rate or gradient clipping"

    def __init__(self) -> None:
        self.step = 0
        self.loss: Tensor | None = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.step, self.loss = trainer.global_step, None
        if not isinstance(batch, Mapping):
            return
        mask = batch.get("mask")
        bad = _first_bad(batch)
        if bad is not None and mask is not None:  # padding may hold anything
            bad = _first_bad({key: _real(value, mask) for key, value in batch.items()})
        if trainer.strategy.reduce_boolean_decision(bad is None, all=True):
            return
        value = _worst(_real(batch[bad], mask)) if bad else "not finite on another process"
        raise self.error(
            trainer, f"the training batch's {bad or 'input'}", value, "; check the data"
        )

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        self.loss = loss.detach()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss, self.loss = self.loss, None
        finite = loss is None or _first_bad({"loss": loss}) is None
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        value = _worst(loss) if not finite else "not finite on another process"
        raise self.error(trainer, "the training loss", value, self.LOSS_HINT)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.check_weights(trainer, pl_module.state_dict(), "")

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.check_weights(trainer, checkpoint.get("state_dict", {}), " (not saved)")

    def check_weights(self, trainer: L.Trainer, weights: Mapping[str, Any], note: str) -> None:
        """Raise :class:`NonFiniteError` on the first weight that is not finite."""
        bad = _first_bad(weights)
        if bad is not None:
            raise NonFiniteError(
                f"the weight {bad}{note}",
                _worst(weights[bad]),
                trainer.global_step,
                trainer.current_epoch,
                _last_checkpoint(trainer),
                self.LOSS_HINT,
            )

    def error(self, trainer: L.Trainer, what: str, value: str, hint: str) -> NonFiniteError:
        return NonFiniteError(
            what, value, self.step, trainer.current_epoch, _last_checkpoint(trainer), hint
        )


def _first_bad(values: Mapping[str, Any]) -> str | None:
    """The name of the first floating-point tensor of ``values`` that is not all finite."""
    for name, value in values.items():
        if isinstance(value, Tensor) and value.is_floating_point():
            if not bool(value.isfinite().all()):
                return name
    return None


def _real(value: Any, mask: Any) -> Any:
    """A tensor ``value`` over the real elements of the sets, when ``mask`` (B, n) marks them."""
    if isinstance(value, Tensor) and isinstance(mask, Tensor) and mask.dim() == 2:
        if value.shape[:2] == mask.shape:
            return value[mask.bool()]
    return value


def _worst(value: Tensor) -> str:
    """``nan``, ``inf`` or ``-inf``: the first kind of non-finite value that ``value`` holds."""
    if torch.isnan(value).any():
        return "nan"
    return "inf" if bool((value == float("inf")).any()) else "-inf"


def _last_checkpoint(trainer: L.Trainer) -> str | None:
    """The newest checkpoint on disk among the trainer's checkpoint callbacks, if any."""
    paths = []
    for callback in trainer.checkpoint_callbacks:
        for attr in ("last_model_path", "best_model_path"):
            path = getattr(callback, attr, "") or ""
            if path and "://" not in path and Path(path).is_file():
                paths.append(Path(path))
    if not paths:
        return None
    newest = max(paths, key=lambda p: p.stat().st_mtime_ns)
    relative = os.path.relpath(newest)
    return str(newest) if relative.startswith("..") else relative


def _step_of(checkpoint: str | None) -> str:
    """`` (step N)`` from the checkpoint file, or ``""`` when it cannot be read."""
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        step = saved["global_step"]
    except Exception:  # noqa: BLE001 - the step is a detail; the path is the message
        return ""
    return f" (step {step})" if isinstance(step, int) else ""
