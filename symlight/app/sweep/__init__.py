"""``symlight sweep``: an Optuna study whose trials are ordinary fits."""

from .study import main

__all__ = ["main"]
