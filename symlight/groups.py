"""Finite permutation groups (public path of :mod:`symlight.core.groups`)."""

from symlight.core.groups import *  # noqa: F403
from symlight.core.groups import __all__  # noqa: F401
