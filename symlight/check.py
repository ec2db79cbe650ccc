"""Measure and assert equivariance (public path of :mod:`symlight.core.check`)."""

from symlight.core.check import *  # noqa: F403
from symlight.core.check import __all__  # noqa: F401
