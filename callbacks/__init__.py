"""Training-time callbacks."""

from .equivariance import EquivarianceCheck
from .progress import ProgressBar

__all__ = ["EquivarianceCheck", "ProgressBar"]
