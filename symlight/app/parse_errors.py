"""One line for a mistake the argument parser finds: an unknown option, a value of the wrong type.

jsonargparse reports such a mistake as the usage listing followed by a nested explanation (the
union of subtypes it tried, each subtype's errors). :func:`one_line` keeps what the user needs:
the config key, the class whose option it is, what was wrong, and the closest valid option name.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

__all__ = ["OneLineErrorParser", "one_line"]

_NOISE = (
    "Does not validate against",
    "Subtypes:",
    "Errors:",
    "- Expected a <class 'NoneType'>",
    "Given value",
)
_KEY = re.compile(r'Parser key "([^"]+)":\s*(.*)')
_TRAILING_KEY = re.compile(r'Parser key "([^"]+)":\s*$')
_CLASS = re.compile(r"- Problem with given class_path '([^']+)':")
_UNKNOWN = re.compile(r"Option '([^']+)' is not accepted")
_NAMESPACE_CLASS = re.compile(r"class_path='([^']+)'")
_NOT_ACCEPTED = re.compile(r"does not accept option '([^']+)'")


def _options(class_path: str) -> list[str]:
    """The init parameters of the class at ``class_path`` (empty if it cannot be imported)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        return [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
    except (ImportError, AttributeError, TypeError, ValueError):
        return []


def _suggestion(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _readable(detail: str) -> str:
    detail = re.sub(r"\. Got value: Namespace\(.*\)$", "", detail)
    detail = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", detail)
    detail = re.sub(r"typing\.Literal\[(.*?)\]", r"one of [\1]", detail)
    return detail.replace("Expected a ", "expected ").replace(". Got value: ", ", got ")


def _locate(lines: list[str]) -> tuple[list[str], str | None, str | None]:
    """Walk jsonargparse's nested report: the config keys down to the error, the class that
    owns the last key (when named), and the first line that says what is wrong.
    """
    path: list[str] = []
    class_path, detail = None, None
    for line in lines:
        if not line or line.startswith(_NOISE):
            continue
        if key := _KEY.match(line):
            path.append(key.group(1))
            if key.group(2):
                detail = key.group(2)
                break
            continue
        if cls := _CLASS.match(line):
            class_path = cls.group(1)
            continue
        trailing = _TRAILING_KEY.search(line)
        if trailing:  # "... expects a function or a callable class: Parser key "pooling":"
            owner = _NAMESPACE_CLASS.search(line)
            class_path = owner.group(1) if owner else class_path
            path.append(trailing.group(1))
            continue
        detail = line.removeprefix("- ")
        break
    return path, class_path, detail


def one_line(message: str, options: list[str] = ()) -> str:
    """The gist of a jsonargparse error ``message`` in one line; ``options`` are the parser's
    own option strings, for suggestions on an unrecognised top-level argument.
    """
    lines = [line.strip() for line in message.strip().splitlines()]
    if lines and lines[0].startswith("unrecognized arguments:"):
        given = lines[0].split(":", 1)[1].split()
        flag = next((g.split("=", 1)[0] for g in given if g.startswith("--")), "")
        return f"{lines[0]}{_suggestion(flag, list(options)) if flag else ''}"
    rejected = _NOT_ACCEPTED.search(lines[0]) if lines else None
    if rejected:  # an unknown key in a config file
        keys = [o.lstrip("-") for o in options]
        return f"unknown config key {rejected.group(1)!r}{_suggestion(rejected.group(1), keys)}"
    path, class_path, detail = _locate(lines)
    if detail is None:
        return lines[0] if lines else "invalid arguments"
    owner = _NAMESPACE_CLASS.search(detail)
    if owner:
        class_path = owner.group(1)
    where = ".".join(path) or "config"
    if class_path:
        where += f" ({class_path.rpartition('.')[2]})"
    unknown = _UNKNOWN.search(detail)
    if unknown:
        name = unknown.group(1)
        choices = _options(class_path) if class_path else []
        listed = f"; options: {', '.join(choices)}" if choices else ""
        return f"{where}: unknown option {name!r}{_suggestion(name, choices)}{listed}"
    return f"{where}: {_readable(detail)}"


class OneLineErrorParser(LightningArgumentParser):
    """LightningCLI's parser, but a mistake in the arguments ends with one line on stderr
    (``symlight: error: ...``) and exit status 2, instead of the usage listing
    (``SYMLIGHT_TRACEBACK=1`` or ``JSONARGPARSE_DEBUG=1`` restore jsonargparse's own report).
    """

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        verbose = os.environ.get("SYMLIGHT_TRACEBACK") or os.environ.get("JSONARGPARSE_DEBUG")
        if not self.exit_on_error or verbose:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        options = list(getattr(parser, "_option_string_actions", {}))
        prog = parser.prog.split()[0] if parser.prog else "symlight"
        sys.stderr.write(f"{prog}: error: {one_line(message, options)}\n")
        self.exit(2)
