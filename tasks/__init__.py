"""Tasks: LightningDataModules that declare their symmetry, loss and metrics."""

from .argmax import ArgmaxDataModule
from .base import SetTask, batch_loader

__all__ = ["ArgmaxDataModule", "SetTask", "batch_loader"]
