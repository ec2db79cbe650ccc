"""Training-time callbacks."""

from .checkpoint import LastCheckpoint, RunCheckpoint
from .equivariance import EquivarianceCheck
from .images import SetImageGrid
from .progress import ProgressBar

__all__ = ["EquivarianceCheck", "LastCheckpoint", "ProgressBar", "RunCheckpoint", "SetImageGrid"]
