"""Tasks: LightningDataModules that declare their symmetry, loss and metrics."""

from . import bandit
from .anomaly import SetAnomalyDataModule
from .argmax import ArgmaxDataModule
from .base import MetricArgs, SetTask, batch_loader

__all__ = [
    "ArgmaxDataModule",
    "MetricArgs",
    "SetAnomalyDataModule",
    "SetTask",
    "bandit",
    "batch_loader",
]
