"""Tasks: LightningDataModules that declare their symmetry, loss and metrics."""

from . import bandit
from .anomaly import SetAnomalyDataModule
from .argmax import ArgmaxDataModule
from .assignment import AssignmentDataModule
from .base import FreshBatches, MetricArgs, SetTask, batch_loader
from .ring import RingDataModule

__all__ = [
    "ArgmaxDataModule",
    "AssignmentDataModule",
    "FreshBatches",
    "MetricArgs",
    "RingDataModule",
    "SetAnomalyDataModule",
    "SetTask",
    "bandit",
    "batch_loader",
]
