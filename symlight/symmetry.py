"""Permutation actions on tensors (public path of :mod:`symlight.core.symmetry`)."""

from symlight.core.symmetry import *  # noqa: F403
from symlight.core.symmetry import __all__  # noqa: F401
