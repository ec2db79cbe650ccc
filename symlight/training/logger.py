"""RunLogger: Lightning's TensorBoard logger, with the epoch filed under ``train/``."""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import TensorBoardLogger

__all__ = ["RunLogger"]


class RunLogger(TensorBoardLogger):
    """:class:`~lightning.pytorch.loggers.TensorBoardLogger` that logs Lightning's ``epoch``
    scalar as ``train/epoch``.

    Lightning adds ``epoch`` to every batch of metrics it logs. On its own, a name without a
    ``/`` is a group of its own, which TensorBoard's Time Series tab sorts first and opens on; as
    ``train/epoch`` it sits with the training curves, after the metrics that matter.
    """

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if "epoch" in metrics:
            metrics = {("train/epoch" if k == "epoch" else k): v for k, v in metrics.items()}
        super().log_metrics(metrics, step)
