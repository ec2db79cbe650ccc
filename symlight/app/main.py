"""The command dispatcher: ``symlight COMMAND ...`` routes to Lightning's commands (fit, validate,
test, predict, through :mod:`symlight.app.cli`) or to symlight's own (``tasks``, ``sweep``).
It only routes; it knows nothing of Lightning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import yaml

from symlight.app import cli
from symlight.app.plugins import broken_plugins, discover_tasks

__all__ = ["EXTRA_COMMANDS", "main"]


def tasks_command(args: list[str]) -> None:
    """``symlight tasks``: the installed tasks, and the task plug-ins that failed to import."""
    parser = argparse.ArgumentParser(
        prog=f"{cli.PROG} tasks",
        description="List the tasks symlight finds: the modules of symlight.tasks and the "
        "installed packages with a 'symlight.tasks' entry point. A plug-in that fails to import "
        "is listed as broken; only commands that use it fail.",
    )
    parser.parse_args(args)
    used = _configs_by_task()
    rows = [("task", "module", "configs", "what it is")]
    for name, cls in sorted(discover_tasks().items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append(
            (name, cls.__module__, ", ".join(used.get(name, [])) or "-", doc[0] if doc else "")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    for name, error in sorted(broken_plugins().items()):
        print(f"{name.ljust(widths[0])}  BROKEN plug-in: {error}")


def _configs_by_task() -> dict[str, list[str]]:
    """Task class name -> the shipped configs whose ``data`` is that task."""
    used: dict[str, list[str]] = {}
    for name in cli.shipped_configs():
        try:
            data = yaml.safe_load(cli.shipped_config_path(name).read_text()).get("data") or {}
        except (OSError, AttributeError, yaml.YAMLError):
            continue
        task = str(data.get("class_path", "")).rpartition(".")[2]
        if task:
            used.setdefault(task, []).append(name)
    return used


def sweep_command(args: list[str]) -> None:
    """``symlight sweep``: imported on use, so that other commands do not load Optuna."""
    from symlight.app.sweep import main as sweep

    sweep(args)


EXTRA_COMMANDS: dict[str, tuple[Callable[[list[str]], Any], str]] = {
    "tasks": (tasks_command, "list the installed tasks and any broken task plug-in"),
    "sweep": (sweep_command, "an Optuna study of fits (symlight sweep --help)"),
}
"""Commands besides Lightning's: ``name -> (run(args), one-line help)``; they run before
LightningCLI is built, with the arguments that follow their name."""


def help_epilog() -> str:
    others = "; ".join(f"{name}: {text}" for name, (_, text) in EXTRA_COMMANDS.items())
    return (
        f"Other commands: {others}. Configs shipped with symlight: "
        f"{', '.join(cli.shipped_configs())} (e.g. {cli.PROG} fit --config argmax.yaml)."
    )


def main(args: list[str] | None = None) -> cli.SymlightCLI | None:
    """Run the symlight command line; ``args`` defaults to ``sys.argv[1:]``.

    A mistake in the command (:class:`~symlight.app.cli.UsageError`) ends with one line on
    stderr, ``symlight: error: MESSAGE``, and exit status 2.
    """
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if argv and argv[0] in EXTRA_COMMANDS:
            EXTRA_COMMANDS[argv[0]][0](argv[1:])
            return None
        return cli.run(args, epilog=help_epilog())
    except cli.UsageError as error:
        print(f"{cli.PROG}: error: {error}", file=sys.stderr)
        raise
