"""Nonlinearities by name: the one place a name is checked and turned into a module."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["ACTIVATIONS", "check_activation", "make_activation"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
"""The nonlinearities a layer can name."""


def check_activation(name: str, allowed: Iterable[str] = ACTIVATIONS) -> str:
    """Return ``name`` if it is one of ``allowed``, else raise a ValueError listing them.

    >>> check_activation("gelu")
    'gelu'
    >>> check_activation("elu")
    Traceback (most recent call last):
    ...
    ValueError: activation must be one of relu, gelu, silu, tanh, sigmoid; got 'elu'
    """
    allowed = tuple(allowed)
    if name not in allowed:
        raise ValueError(f"activation must be one of {', '.join(allowed)}; got {name!r}")
    return name


def make_activation(name: str, allowed: Iterable[str] = ACTIVATIONS) -> nn.Module:
    """A fresh module for the nonlinearity ``name`` (checked with :func:`check_activation`)."""
    return ACTIVATIONS[check_activation(name, allowed)]()
