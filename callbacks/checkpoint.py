"""RunCheckpoint: the best checkpoint by a monitored metric, and ``last.ckpt`` at every save point."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "LastCheckpoint", "RunCheckpoint"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: each checkpoint is written to
    ``<name>.partial`` beside it and renamed over ``<name>`` once complete, so a process killed,
    or a disk that fills up, while a checkpoint is written leaves the previous file whole (the
    ``.partial`` file is removed when the write fails). Remote paths (``s3://``...) are written
    directly.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        partial = Path(f"{path}.partial")
        try:
            super().save_checkpoint(checkpoint, partial, storage_options)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt`` at every save point, replaced atomically.

    A :class:`~lightning.pytorch.callbacks.ModelCheckpoint` without a monitored metric keeps one
    checkpoint, written at each of its save points. This one writes it as ``last.partial.ckpt``
    and then renames it to ``last.ckpt``, so a process killed while saving leaves the previous
    ``last.ckpt`` whole.

    Args:
        dirpath: the checkpoint folder.
        every_n_train_steps: as in :class:`~lightning.pytorch.callbacks.ModelCheckpoint`.
        train_time_interval: as in :class:`~lightning.pytorch.callbacks.ModelCheckpoint`.
        every_n_epochs: as in :class:`~lightning.pytorch.callbacks.ModelCheckpoint`.
        save_on_train_epoch_end: as in :class:`~lightning.pytorch.callbacks.ModelCheckpoint`.
        save_weights_only: as in :class:`~lightning.pytorch.callbacks.ModelCheckpoint`.

    """

    PARTIAL = "last.partial"

    def __init__(
        self,
        dirpath: str | Path | None = None,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        save_weights_only: bool = False,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=self.PARTIAL,
            monitor=None,
            save_top_k=1,
            save_last=False,
            save_weights_only=save_weights_only,
            auto_insert_metric_name=False,
            every_n_train_steps=every_n_train_steps,
            train_time_interval=train_time_interval,
            every_n_epochs=every_n_epochs,
            save_on_train_epoch_end=save_on_train_epoch_end,
            enable_version_counter=False,
        )
        self.saves_within_epoch = bool(every_n_train_steps) or train_time_interval is not None
        """Whether it may save after a training batch (else only at epoch ends and validations)."""

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.saves_within_epoch:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            self.publish(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self.publish(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self.publish(trainer)

    def publish(self, trainer: L.Trainer) -> None:
        """Rename a freshly written ``last.partial.ckpt`` to ``last.ckpt`` (on global rank 0) and
        record it as ``last_model_path`` (on every rank).
        """
        partial = self.best_model_path
        if not partial:
            return
        final = str(Path(partial).with_name(self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION))
        self.last_model_path = final
        if trainer.is_global_zero and "://" not in partial and Path(partial).is_file():
            os.replace(partial, final)


class RunCheckpoint(ModelCheckpoint):
    """A :class:`~lightning.pytorch.callbacks.ModelCheckpoint` whose ``last.ckpt`` is the latest state.

    Lightning (2.6) writes ``last.ckpt`` only when it also writes a top-k checkpoint, so with a
    monitored metric that stops improving, ``last.ckpt`` holds the best weights and a run resumed
    from it starts over from there. Here ``last.ckpt`` is written at every save point (each
    validation, or each training epoch end), whatever the monitored metric did, so
    ``--ckpt_path last`` continues where the run stopped: a :class:`LastCheckpoint` with the same
    folder and save points writes it, atomically. Everything else is ModelCheckpoint's, with the
    same arguments; ``save_last`` (true or ``"link"``) asks for ``last.ckpt``, and one more
    argument says how often.

    Args:
        last_every_n_train_steps: also write ``last.ckpt`` every this many training steps (None:
            only at the save points), so that a run killed in the middle of a long epoch loses at
            most that many steps; a run resumed from such a checkpoint goes on with the batches
            it would have had. The best checkpoint keeps its own save points.

    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        last_every_n_train_steps: int | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=monitor,
            verbose=verbose,
            save_last=False,  # last.ckpt is the LastCheckpoint's
            save_top_k=save_top_k,
            save_on_exception=save_on_exception,
            save_weights_only=save_weights_only,
            mode=mode,
            auto_insert_metric_name=auto_insert_metric_name,
            every_n_train_steps=every_n_train_steps,
            train_time_interval=train_time_interval,
            every_n_epochs=every_n_epochs,
            save_on_train_epoch_end=save_on_train_epoch_end,
            enable_version_counter=enable_version_counter,
        )
        if last_every_n_train_steps is not None and not last_every_n_train_steps >= 1:
            raise ValueError(
                "last_every_n_train_steps must be a number of steps >= 1, or None (last.ckpt at "
                f"the save points only), got {last_every_n_train_steps}"
            )
        self.keep_last = bool(save_last)
        self.last_every_n_train_steps = last_every_n_train_steps
        self.save_points = {
            "every_n_train_steps": every_n_train_steps,
            "train_time_interval": train_time_interval,
            "every_n_epochs": every_n_epochs,
            "save_on_train_epoch_end": save_on_train_epoch_end,
            "save_weights_only": save_weights_only,
        }
        self.lasts: list[LastCheckpoint] = []
        """Writers of ``last.ckpt``: at the save points, and every ``last_every_n_train_steps``."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.lasts = []
        if self.keep_last:
            self.lasts.append(LastCheckpoint(dirpath=self.dirpath, **self.save_points))
            if self.last_every_n_train_steps is not None:
                self.lasts.append(
                    LastCheckpoint(
                        dirpath=self.dirpath,
                        every_n_train_steps=self.last_every_n_train_steps,
                        save_weights_only=self.save_points["save_weights_only"],
                    )
                )
        for last in self.lasts:
            last.setup(trainer, pl_module, stage)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._also_last("on_train_start", trainer, pl_module)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._also_last("on_train_batch_end", trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._also_last("on_train_epoch_end", trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._also_last("on_validation_end", trainer, pl_module)

    def _also_last(self, hook: str, *args: Any) -> None:
        """Run the same hook of each :class:`LastCheckpoint`; ``last_model_path`` follows their
        file.
        """
        for last in self.lasts:
            getattr(last, hook)(*args)
            self.last_model_path = last.last_model_path or self.last_model_path
