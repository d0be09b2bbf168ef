"""``eventclip``: one CLI with subcommands. Thin: parse, call the library, print.

Every module in :mod:`eventclip.commands` is a subcommand. Each defines
``add_parser(subparsers) -> None``, which registers its parser and sets ``func(args) -> int``.
Command modules import heavy dependencies inside ``func`` so that ``eventclip --help`` stays fast
and works without optional extras.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from eventclip import __version__
from eventclip.errors import ConfigError, EventclipError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one subparser per module in eventclip.commands."""
    import eventclip.commands as commands

    parser = argparse.ArgumentParser(prog="eventclip", description="Event cameras, understood live.")
    parser.add_argument("--version", action="version", version=f"eventclip {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"eventclip.commands.{info.name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``eventclip`` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"eventclip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except EventclipError as exc:
        print(f"eventclip {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
