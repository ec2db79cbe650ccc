"""Training-time callbacks."""

from .equivariance import EquivarianceCheck
from .images import SetImageGrid

__all__ = ["EquivarianceCheck", "SetImageGrid"]
