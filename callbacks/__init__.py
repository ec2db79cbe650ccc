"""Training-time callbacks."""

from .equivariance import EquivarianceCheck
from .images import SetImageGrid
from .progress import ProgressBar

__all__ = ["EquivarianceCheck", "ProgressBar", "SetImageGrid"]
