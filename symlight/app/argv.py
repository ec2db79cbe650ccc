"""The command line read once, before LightningCLI: the command, its config files, ``--ckpt_path``
and whether it only shows help or the config. Everything else passes through untouched, in order.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CommandLine", "pre_parse"]


@dataclass(frozen=True)
class CommandLine:
    """A pre-parsed command line: ``symlight COMMAND [--config C]... [--ckpt_path P] REST``."""

    command: str | None
    configs: tuple[str, ...] = ()
    ckpt_path: str | None = None
    help: bool = False
    print_config: str | None = None  # "" for a bare --print_config
    rest: tuple[str, ...] = ()

    @property
    def shows(self) -> bool:
        """True for a command that only prints (help or the config) and runs nothing."""
        return self.help or self.print_config is not None

    @property
    def options(self) -> list[str]:
        """The names of the other options given (``--trainer.max_epochs``, ...), in order."""
        return [token.split("=", 1)[0] for token in self.rest if token.startswith("--")]

    def replace(self, **changes) -> CommandLine:
        return dataclasses.replace(self, **changes)

    def args(self) -> list[str]:
        """The command line for LightningCLI: the command, the config files, the other arguments
        in their order, then ``--ckpt_path`` and the help or print-config flag.
        """
        args = [self.command] if self.command else []
        args += [f"--config={config}" for config in self.configs]
        args += self.rest
        if self.ckpt_path is not None:
            args.append(f"--ckpt_path={self.ckpt_path}")
        if self.help:
            args.append("--help")
        if self.print_config is not None:
            args.append(
                f"--print_config={self.print_config}" if self.print_config else "--print_config"
            )
        return args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("-c", "--config", action="append", default=[])
    parser.add_argument("--ckpt_path")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--print_config", nargs="?", const="")
    return parser


def pre_parse(argv: Sequence[str]) -> CommandLine:
    """Read ``argv`` (without the program name) into a :class:`CommandLine`.

    >>> line = pre_parse(["fit", "--trainer.max_epochs=2", "-c", "argmax", "--ckpt_path", "last"])
    >>> line.command, line.configs, line.ckpt_path, line.rest
    ('fit', ('argmax',), 'last', ('--trainer.max_epochs=2',))
    >>> line.args()
    ['fit', '--config=argmax', '--trainer.max_epochs=2', '--ckpt_path=last']

    Raises:
        argparse.ArgumentError: an option without its value (``--config`` at the end).

    """
    argv = list(argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    known, rest = _parser().parse_known_args(argv[1:] if command else argv)
    return CommandLine(
        command=command,
        configs=tuple(known.config),
        ckpt_path=known.ckpt_path,
        help=known.help,
        print_config=known.print_config,
        rest=tuple(rest),
    )
