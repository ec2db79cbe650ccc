"""Tasks: LightningDataModules that declare their symmetry, loss and metrics."""

from . import bandit
from .argmax import ArgmaxDataModule
from .base import SetTask, batch_loader

__all__ = ["ArgmaxDataModule", "bandit", "SetTask", "batch_loader"]
