"""Training-time callbacks."""

from .checkpoint import RunCheckpoint
from .equivariance import EquivarianceCheck
from .images import SetImageGrid
from .progress import ProgressBar

__all__ = ["EquivarianceCheck", "ProgressBar", "RunCheckpoint", "SetImageGrid"]
