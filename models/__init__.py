"""Equivariant layers and networks, typed by their representations (``rep_in``, ``rep_out``)."""

from .activations import ACTIVATIONS, check_activation, make_activation
from .attention import ISAB, MAB, PMA, SAB, MultiheadAttention
from .axes import AxisBroadcast, AxisPool
from .base import EquivariantModule, SetModule, mask_output
from .baseline import MLPBaseline, PooledBaseline
from .cross_attention import CrossAttention
from .deepsets import DeepSets
from .encoded import EncodedSet, EncoderFactory
from .encoders import ConvEncoder, MLPEncoder
from .group_linear import GroupLinear
from .linear import BASES, TERMS, EquivariantLinear, Term, basis_size
from .network import (
    LAYERS,
    EquivariantNetwork,
    EquivariantSequential,
    LayerSpec,
    Residual,
    build_layer,
    build_layers,
    spec_options,
)
from .pairwise import PairMLP, PairwiseComparison, PairwiseLift, PairwiseReduce, PairwiseSimilarity
from .pointwise import MLP, Activation, ChannelDropout, LayerNorm, Pointwise
from .pooling import masked_pool
from .presets import PairwiseNet, SetTransformer
from .product_linear import ProductLinear, product_basis, product_basis_size
from .sinkhorn import Sinkhorn

PRESETS: dict[str, type[EquivariantModule]] = {
    "DeepSets": DeepSets,
    "PairwiseNet": PairwiseNet,
    "SetTransformer": SetTransformer,
    "EquivariantNetwork": EquivariantNetwork,
}
"""Equivariant networks buildable as ``net(in_channels, out_channels, out_order)``."""

__all__ = [
    "ACTIVATIONS",
    "BASES",
    "ISAB",
    "LAYERS",
    "MAB",
    "MLP",
    "PMA",
    "PRESETS",
    "SAB",
    "TERMS",
    "Activation",
    "AxisBroadcast",
    "AxisPool",
    "ChannelDropout",
    "ConvEncoder",
    "CrossAttention",
    "DeepSets",
    "EncodedSet",
    "EncoderFactory",
    "EquivariantLinear",
    "EquivariantModule",
    "EquivariantNetwork",
    "EquivariantSequential",
    "GroupLinear",
    "LayerNorm",
    "LayerSpec",
    "MLPBaseline",
    "MLPEncoder",
    "MultiheadAttention",
    "PairMLP",
    "PairwiseComparison",
    "PairwiseLift",
    "PairwiseNet",
    "PairwiseReduce",
    "PairwiseSimilarity",
    "Pointwise",
    "PooledBaseline",
    "ProductLinear",
    "Residual",
    "SetModule",
    "SetTransformer",
    "Sinkhorn",
    "Term",
    "basis_size",
    "build_layer",
    "build_layers",
    "check_activation",
    "make_activation",
    "mask_output",
    "masked_pool",
    "product_basis",
    "product_basis_size",
    "spec_options",
]
