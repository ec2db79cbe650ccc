"""Per-element encoders: turn one set element (an image, a vector) into a feature vector.

An encoder is built as ``encoder(element_shape)`` (the task supplies the shape of one element) and
maps ``(N, *element_shape) -> (N, out_channels)``; its ``out_channels`` attribute tells the set
network how many channels it gets. The composition (:class:`symlight.models.EncodedSet`) applies
one encoder, with the same weights, to every real element of every set, so whatever the set
network is equivariant to, the composition is too: an encoder acts on one element at a time.

Normalisation inside an encoder must not mix elements: ``group`` (GroupNorm) and ``layer`` use
statistics of one element only, so an element's features never depend on the other elements or
on padding. ``batch`` (BatchNorm) is offered for comparison: the composition only feeds it real
elements, so padding never enters its statistics and permuting a set leaves them unchanged, but in
training mode each element's features depend on every other real element of the *batch* (other
sets included), and in evaluation mode on the running statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from .activations import make_activation

__all__ = ["ConvEncoder", "MLPEncoder", "Norm"]

Norm = Literal["none", "group", "layer", "batch"]


ENCODER_ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
"""The nonlinearities an encoder can name."""


def _activation(name: str) -> nn.Module:
    return make_activation(name, ENCODER_ACTIVATIONS)


def _norm2d(norm: str, channels: int, groups: int) -> nn.Module:
    if norm == "none":
        return nn.Identity()
    if norm == "group":
        return nn.GroupNorm(math.gcd(groups, channels), channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be one of none, group, layer, batch; got {norm!r}")


def _check_positive(name: str, values: Sequence[int]) -> None:
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive sizes, got {list(values)}")


class ConvEncoder(nn.Module):
    """A small CNN for one image element: ``(N, C, H, W) -> (N, out_channels)``.

    Acts on each element separately (no symmetry of its own; shared across the set, it keeps the
    set network's S_n symmetry). Each stage is a ``kernel_size`` convolution, a normalisation, the
    activation and a 2x2 max-pooling while the image is larger than 1x1; then the feature map is
    averaged (``head="avg"``) or flattened (``head="flatten"``, keeps where things are) and a
    linear layer gives ``out_channels`` features.

    Args:
        element_shape: ``(C, H, W)`` of one element (supplied by the task).
        channels: output channels of each convolution stage.
        out_channels: features per element.
        kernel_size: odd size of the square convolution kernels.
        norm: ``group`` (GroupNorm with ``groups`` groups, default), ``layer`` (one group),
            ``batch`` (BatchNorm: statistics across the real elements of the whole batch, see the
            module docstring) or ``none``.
        groups: groups of GroupNorm (reduced to a divisor of each stage's channels).
        activation: ``relu``, ``gelu``, ``silu`` or ``tanh``.
        head: ``flatten`` or ``avg`` (global average pooling) before the last linear layer.
        dropout: dropout before the last linear layer.

    >>> import torch
    >>> enc = ConvEncoder((1, 8, 8), channels=(8, 16), out_channels=12)
    >>> enc(torch.zeros(5, 1, 8, 8)).shape, enc.out_channels
    (torch.Size([5, 12]), 12)

    """

    def __init__(
        self,
        element_shape: tuple[int, ...],
        channels: Sequence[int] = (32, 64),
        out_channels: int = 64,
        kernel_size: int = 3,
        norm: Norm = "group",
        groups: int = 8,
        activation: str = "relu",
        head: Literal["flatten", "avg"] = "flatten",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        shape = tuple(int(s) for s in element_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(
                f"ConvEncoder takes image elements of shape (C, H, W), got {shape}: "
                "use MLPEncoder for vector elements"
            )
        _check_positive("channels", channels)
        if out_channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"need out_channels >= 1 and an odd kernel_size, got {out_channels}, {kernel_size}"
            )
        if head not in ("flatten", "avg"):
            raise ValueError(f"head must be flatten or avg; got {head!r}")
        self.element_shape = shape
        self.out_channels = out_channels
        width, (height, breadth), layers = shape[0], shape[1:], []
        for c in channels:
            layers += [
                nn.Conv2d(width, c, kernel_size, padding=kernel_size // 2),
                _norm2d(norm, c, groups),
                _activation(activation),
            ]
            if min(height, breadth) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, breadth = height // 2, breadth // 2
            width = c
        if head == "avg":
            layers.append(nn.AdaptiveAvgPool2d(1))
            features = width
        else:
            features = width * height * breadth
        layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, out_channels)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.element_shape:
            raise ValueError(
                f"ConvEncoder was built for elements of shape {self.element_shape}, "
                f"got a batch of shape {tuple(x.shape)}"
            )
        return self.layers(x)


class MLPEncoder(nn.Module):
    """An MLP for one element of any shape, flattened: ``(N, *element_shape) -> (N, out_channels)``.

    Acts on each element separately, like :class:`ConvEncoder`.

    Args:
        element_shape: shape of one element (supplied by the task), e.g. ``(F,)``.
        hidden: widths of the hidden layers.
        out_channels: features per element.
        norm: ``layer`` (LayerNorm after each hidden layer), ``batch`` (BatchNorm, see the module
            docstring) or ``none`` (default).
        activation: ``relu``, ``gelu``, ``silu`` or ``tanh``.

    >>> import torch
    >>> MLPEncoder((3,), hidden=(16,), out_channels=4)(torch.zeros(2, 3)).shape
    torch.Size([2, 4])

    """

    def __init__(
        self,
        element_shape: tuple[int, ...],
        hidden: Sequence[int] = (64,),
        out_channels: int = 64,
        norm: Literal["none", "layer", "batch"] = "none",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        shape = tuple(int(s) for s in element_shape)
        if not shape or min(shape) < 1 or out_channels < 1:
            raise ValueError(f"need a non-empty element shape and out_channels >= 1, got {shape}")
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden sizes must be positive, got {list(hidden)}")
        norms = {"none": nn.Identity, "layer": nn.LayerNorm, "batch": nn.BatchNorm1d}
        if norm not in norms:
            raise ValueError(f"norm must be one of none, layer, batch; got {norm!r}")
        self.element_shape = shape
        self.out_channels = out_channels
        width, layers = math.prod(shape), [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(width, h)]
            layers += [norms[norm](h)] if norm != "none" else []
            layers += [_activation(activation)]
            width = h
        layers.append(nn.Linear(width, out_channels))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
