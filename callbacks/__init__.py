"""Training-time callbacks."""

from .equivariance import EquivarianceCheck

__all__ = ["EquivarianceCheck"]
