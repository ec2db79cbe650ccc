"""Equivariant layers and networks, typed by their order over the set axis."""

from .base import EquivariantModule, mask_output
from .baseline import MLPBaseline
from .deepsets import DeepSets
from .linear import EquivariantLinear
from .network import EquivariantSequential
from .pointwise import Activation, Pointwise
from .pooling import masked_pool

__all__ = [
    "Activation",
    "DeepSets",
    "EquivariantLinear",
    "EquivariantModule",
    "EquivariantSequential",
    "MLPBaseline",
    "Pointwise",
    "mask_output",
    "masked_pool",
]
