"""symlight: neural networks that are permutation-symmetric by construction."""

__version__ = "0.1.0"
