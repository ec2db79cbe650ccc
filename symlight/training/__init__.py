"""What every task's LightningModule shares: the generic :class:`SymmetricModule`."""

from .logger import RunLogger
from .module import (
    NetworkFactory,
    SymmetricModule,
    attached_trainer,
    build_network,
    check_batch,
    metric_key,
)

__all__ = [
    "NetworkFactory",
    "RunLogger",
    "SymmetricModule",
    "attached_trainer",
    "build_network",
    "check_batch",
    "metric_key",
]
