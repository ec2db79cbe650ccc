"""A progress bar that costs the training loop next to nothing."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

__all__ = ["ProgressBar"]


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM progress bar, redrawn at most every ``interval`` seconds while training.

    Lightning's bar redraws after every ``refresh_rate`` batches; at the default of 1, drawing
    costs a small network more than a millisecond per step. This one shows the same bar and
    metrics, redrawn after a batch only when ``interval`` seconds have passed since the last
    drawing, and always after the last batch of an epoch or run.

    Args:
        interval: least time between two redraws of the training bar, in seconds.
        refresh_rate: as in :class:`~lightning.pytorch.callbacks.TQDMProgressBar` (the other bars).
        process_position: as in :class:`~lightning.pytorch.callbacks.TQDMProgressBar`.
        leave: as in :class:`~lightning.pytorch.callbacks.TQDMProgressBar`.

    """

    def __init__(
        self,
        interval: float = 0.1,
        refresh_rate: int = 1,
        process_position: int = 0,
        leave: bool = False,
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval}")
        super().__init__(refresh_rate, process_position, leave)
        self.interval = interval
        self._drawn = float("-inf")

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.monotonic()
        last = trainer.is_last_batch or 0 < trainer.max_steps <= trainer.global_step
        if last or now - self._drawn >= self.interval:
            self._drawn = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
