"""RunCheckpoint: the best checkpoint by a monitored metric, and ``last.ckpt`` at every save point."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["RunCheckpoint"]


class RunCheckpoint(ModelCheckpoint):
    """A :class:`~lightning.pytorch.callbacks.ModelCheckpoint` whose ``last.ckpt`` is the latest state.

    Lightning (2.6) writes ``last.ckpt`` only when it also writes a top-k checkpoint, so with a
    monitored metric that stops improving, ``last.ckpt`` holds the best weights and a run resumed
    from it starts over from there. Here ``last.ckpt`` is written at every save point (each
    validation, or each training epoch end), whatever the monitored metric did, so
    ``--ckpt_path last`` continues where the run stopped. Everything else is ModelCheckpoint's.
    """

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._save_last_anyway(trainer, at_train_epoch_end=False)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_anyway(trainer, at_train_epoch_end=True)

    def _save_last_anyway(self, trainer: L.Trainer, at_train_epoch_end: bool) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return  # no last checkpoint wanted, or one was written at this step already
        if self._should_save_on_train_epoch_end(trainer) != at_train_epoch_end:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
