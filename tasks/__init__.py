"""Tasks: LightningDataModules that declare their symmetry, loss and metrics."""

from . import bandit
from .argmax import ArgmaxDataModule
from .base import MetricArgs, SetTask, batch_loader
from .ring import RingDataModule

__all__ = ["ArgmaxDataModule", "MetricArgs", "RingDataModule", "SetTask", "bandit", "batch_loader"]
