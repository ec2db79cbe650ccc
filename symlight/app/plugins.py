"""Finding tasks: the modules of ``symlight.tasks`` and installed ``symlight.tasks`` entry points."""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

import symlight.tasks
from symlight.tasks.base import SetTask

__all__ = ["ENTRY_POINT_GROUP", "broken_plugins", "discover_tasks"]

ENTRY_POINT_GROUP = "symlight.tasks"

_BROKEN: dict[str, str] = {}


def discover_tasks() -> dict[str, type]:
    """Import every task and return ``{class name: class}`` for each LightningDataModule found.

    Built-in tasks live in ``symlight.tasks``; a separate package adds one by declaring an entry
    point in the ``symlight.tasks`` group that names its DataModule class (or a module holding
    them). Importing them is what lets a config name a task by its bare class name.

    A plug-in that fails to import is skipped and recorded (see :func:`broken_plugins`), so that
    one broken package fails only the commands that use its tasks.
    """
    found: dict[str, type] = {}
    _BROKEN.clear()  # what the last discovery could not load, not what an earlier one could not
    for info in pkgutil.iter_modules(symlight.tasks.__path__, "symlight.tasks."):
        _collect(importlib.import_module(info.name), found)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as err:
            _BROKEN[ep.name] = f"{ep.value} failed to import: {type(err).__name__}: {err}"
            continue
        if isinstance(obj, type):
            found[obj.__name__] = obj
        else:
            _collect(obj, found)
    return found


def _collect(module, found: dict[str, type]) -> None:
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, SetTask) and value is not SetTask:
            found.setdefault(value.__name__, value)


def broken_plugins() -> dict[str, str]:
    """``{entry point name: what went wrong}`` for the plug-ins the last discovery could not load."""
    return dict(_BROKEN)
