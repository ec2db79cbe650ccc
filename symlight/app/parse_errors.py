"""One line for a mistake the argument parser finds: an unknown option, a value of the wrong type.

jsonargparse reports such a mistake as the usage listing followed by a nested explanation (the
union of subtypes it tried, each subtype's errors). :func:`explain` finds the mistake again from
structured state instead: the keys the parser knows (``parser.get_defaults()``), the classes that
the configs and arguments name, those classes' signatures, and each value checked against its
parameter's type. The line names the config key, the class whose option it is, what was wrong,
and the closest valid option name.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import jsonargparse
import yaml
from lightning.pytorch.cli import LightningArgumentParser

from symlight.app.plugins import discover_tasks

__all__ = ["OneLineErrorParser", "ParserError", "error_chain", "explain"]

CLASS_MODULES = ("symlight.tasks", "symlight.training", "symlight.models", "symlight.callbacks")
"""Where a class named without its module (``class_path: ArgmaxDataModule``) is looked up."""


class ParserError(SystemExit):
    """The parser found a mistake in the command; :func:`explain` turns it into one line."""

    def __init__(self, parser: jsonargparse.ArgumentParser, error: BaseException | None) -> None:
        super().__init__(2)
        self.parser = parser
        self.error = error


class OneLineErrorParser(LightningArgumentParser):
    """LightningCLI's parser, but a mistake in the arguments raises :class:`ParserError`, which the
    command turns into one line on stderr and exit status 2, instead of the usage listing
    (``SYMLIGHT_TRACEBACK=1`` or ``JSONARGPARSE_DEBUG=1`` restore jsonargparse's own report).
    """

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        verbose = os.environ.get("SYMLIGHT_TRACEBACK") or os.environ.get("JSONARGPARSE_DEBUG")
        if not self.exit_on_error or verbose:
            super().error(message, ex)
        # a config file's error is raised by the main parser, naming the subcommand's
        parser = getattr(ex, "subcommand_parser", None) or self
        raise ParserError(parser, ex if ex is not None else ValueError(message))


@dataclass
class Given:
    """One value given to the parser: ``key`` (dotted), the value, and how it was given."""

    key: str
    value: Any
    given: str  # ``--key value`` on the command line, or the config file's name
    from_file: bool


def explain(
    parser: jsonargparse.ArgumentParser,
    configs: Sequence[str],
    args: Sequence[str],
    groups: Mapping[str, type],
    error: BaseException | None = None,
) -> str:
    """One line for the first mistake among ``configs`` (files) and ``args`` (the other command
    line arguments, in order) that ``parser`` (a subcommand's) rejects. ``groups`` are the
    parser's class groups (``trainer`` -> Trainer, ...); ``error`` is the parser's error, whose
    innermost message is the line when no mistake is found here.
    """
    known = list(parser.get_defaults().keys())
    classes: dict[str, type] = dict(groups)
    for item in _given(configs, args):
        line = _check(item, known, classes, groups)
        if line:
            return line
    return _innermost(error) if error is not None else "invalid arguments"


def _check(item: Given, known: list[str], classes: dict[str, type], groups: Mapping) -> str | None:
    key, value = item.key, item.value
    if key.endswith(".class_path") or (key in known and _class_named(value)):
        cls = _class_named(value)
        if cls is not None:
            classes[key.removesuffix(".class_path")] = cls
        return None
    owner = max((p for p in classes if key.startswith(p + ".")), key=len, default=None)
    if owner is None or owner in groups:
        parts = key.split(".")
        if any(".".join(parts[:i]) in known for i in range(1, len(parts) + 1)):
            return _bad_value(item, owner, classes) if owner else None
        if item.from_file:
            return f"unknown config key {key!r}{_suggestion(key, known)}"
        return f"unrecognized arguments: {item.given}{_suggestion(key, known, prefix='--')}"
    rest = key[len(owner) + 1 :].split(".")
    if rest[0] != "init_args" or len(rest) < 2:
        return None  # dict_kwargs and the like: jsonargparse's own business
    cls, name = classes[owner], rest[1]
    options = _parameters(cls)
    where = owner.replace(".init_args", "")
    if options and name not in options:
        listed = f"; options: {', '.join(options)}"
        return (
            f"{where} ({cls.__name__}): unknown option {name!r}{_suggestion(name, options)}{listed}"
        )
    return _bad_value(item, owner, classes) if len(rest) == 2 else None


def _bad_value(item: Given, owner: str, classes: Mapping[str, type]) -> str | None:
    """``where (Class): expected TYPE, got VALUE`` when ``item`` does not fit its parameter."""
    cls = classes[owner]
    name = item.key.rsplit(".", 1)[1]
    hint = _hints(cls).get(name)
    if hint is None or not _simple(hint) or _is_config_file(item.value):
        return None
    check = jsonargparse.ArgumentParser(exit_on_error=False)
    check.add_argument("--value", type=hint)
    try:
        if item.from_file:
            check.parse_object({"value": item.value})
        else:
            check.parse_args([f"--value={item.value}"])
    except Exception:  # noqa: BLE001 - any rejection of the value is the mistake
        where = f"{owner.replace('.init_args', '')}.{name}"
        return f"{where} ({cls.__name__}): expected {_type_text(hint)}, got {item.value}"
    return None


# -- what was given --------------------------------------------------------------------------------
def _given(configs: Sequence[str], args: Sequence[str]) -> Iterator[Given]:
    """Every value of the config files, then of the arguments, in the order the parser reads them;
    a config file given as a value (``--model.init_args.net models/pairwise.yaml``) is read too.
    """
    for config in configs:
        yield from _from_file(Path(config), "")
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("--"):
            continue
        key, eq, value = token[2:].partition("=")
        given = token
        if not eq and i < len(args) and not args[i].startswith("--"):
            value, given = args[i], f"{token} {args[i]}"
            i += 1
        yield Given(key, value, given, from_file=False)
        if _is_config_file(value) and Path(value).is_file():
            yield from _from_file(Path(value), key)


def _from_file(path: Path, prefix: str) -> Iterator[Given]:
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return
    for key, value in _flatten(content, prefix):
        yield Given(key, value, path.name, from_file=True)
        if _is_config_file(value) and (path.parent / value).is_file():
            yield from _from_file(path.parent / value, key)


def _flatten(content: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(content, Mapping):
        for key, value in content.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix, content


def _is_config_file(value: Any) -> bool:
    return isinstance(value, str) and value.endswith((".yaml", ".yml"))


# -- classes and types ----------------------------------------------------------------------------
def _class_named(name: Any) -> type | None:
    """The class at ``name`` (``pkg.mod.Class``, or a class name in :data:`CLASS_MODULES`)."""
    if not isinstance(name, str) or not name or not name.replace(".", "").isidentifier():
        return None
    module, _, attr = name.rpartition(".")
    if not module and attr in discover_tasks():
        return discover_tasks()[attr]
    for candidate in [module] if module else CLASS_MODULES:
        try:
            found = getattr(importlib.import_module(candidate), attr, None)
        except ImportError:
            continue
        if isinstance(found, type):
            return found
    return None


def _parameters(cls: type) -> list[str]:
    """The init parameters of ``cls`` (empty when its signature cannot be read)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in parameters if p.kind not in kinds]


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - unresolvable annotations: no value check
        return {}


_SCALARS = (int, float, str, bool, type(None), Path)


def _simple(hint: Any) -> bool:
    """Whether ``hint`` is built of scalars, literals, unions and lists of them only."""
    origin = typing.get_origin(hint)
    if origin is None:
        return hint in _SCALARS
    if origin is Literal:
        return True
    if origin in (typing.Union, types.UnionType, list, tuple, Sequence):
        return all(_simple(a) for a in typing.get_args(hint) if a is not Ellipsis)
    return False


def _type_text(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return f"one of {list(typing.get_args(hint))}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in typing.get_args(hint))
    if origin is None:
        return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))
    return str(hint).replace("typing.", "")


# -- wording --------------------------------------------------------------------------------------
def _suggestion(name: str, choices: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def error_chain(error: BaseException) -> list[BaseException]:
    """``error`` and the errors it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _innermost(error: BaseException) -> str:
    """The first line of the innermost error in ``error``'s chain."""
    for candidate in reversed(error_chain(error)):
        text = str(candidate).strip()
        if text:
            return text.splitlines()[0]
    return type(error).__name__
