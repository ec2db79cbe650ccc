"""Training-time callbacks."""

from .checkpoint import AtomicCheckpointIO, LastCheckpoint, RunCheckpoint
from .equivariance import EquivarianceCheck
from .finite import FiniteCheck, NonFiniteError
from .images import SetImageGrid
from .progress import ProgressBar

__all__ = [
    "AtomicCheckpointIO",
    "EquivarianceCheck",
    "FiniteCheck",
    "LastCheckpoint",
    "NonFiniteError",
    "ProgressBar",
    "RunCheckpoint",
    "SetImageGrid",
]
