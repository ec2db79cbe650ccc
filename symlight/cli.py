"""The command line, ``python -m symlight`` (public path of :mod:`symlight.app`)."""

from symlight.app.cli import SymlightCLI, metrics_table, resolve_config
from symlight.app.main import EXTRA_COMMANDS, main

__all__ = ["EXTRA_COMMANDS", "SymlightCLI", "main", "metrics_table", "resolve_config"]
