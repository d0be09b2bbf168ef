"""Options shared by the commands that window and encode a recording (classify, anomaly, fewshot).

Why one place: these commands must cut and encode recordings the same way, so their options and
the parsing of ``--geometry`` are defined once.
"""

from __future__ import annotations

import argparse

from eventclip.errors import ConfigError
from eventclip.runtime.base import BACKENDS


def add_recording_options(parser: argparse.ArgumentParser) -> None:
    """--window-us, --backend, --format and --geometry, with the same defaults everywhere."""
    parser.add_argument("--window-us", type=int, default=None, help="window length in µs (default: the model card's)")
    add_backend_option(parser)
    parser.add_argument("--format", default=None, help="event file format, skipping detection (e.g. evt3, dat)")
    add_geometry_option(parser)


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend``, its choices from the backend registry (``auto`` picks the fastest that can run)."""
    parser.add_argument("--backend", default="auto", choices=BACKENDS.choices(),
                        help="inference backend (default auto: the fastest that can run the model)")


def add_geometry_option(parser: argparse.ArgumentParser, help: str = "WIDTHxHEIGHT for files that do not say") -> None:
    """``--geometry WIDTHxHEIGHT``, the one sensor-size flag of every command; the old ``--width/--height``
    are still recognised, only to say what replaced them (:func:`geometry_arg`)."""
    parser.add_argument("--geometry", default=None, metavar="WxH", help=help)
    parser.add_argument("--width", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--height", type=int, default=None, help=argparse.SUPPRESS)


def geometry_arg(args: argparse.Namespace) -> tuple[int, int] | None:
    """(width, height) from ``--geometry``; ConfigError for the retired ``--width/--height``."""
    if getattr(args, "width", None) is not None or getattr(args, "height", None) is not None:
        raise ConfigError("--width/--height were replaced by --geometry WIDTHxHEIGHT (e.g. --geometry 1280x720)")
    return parse_geometry(args.geometry)


def parse_geometry(text: str | None) -> tuple[int, int] | None:
    """'640x480' -> (640, 480); ConfigError naming the option otherwise."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--geometry must look like 640x480, got {text!r}") from exc
    if w <= 0 or h <= 0:
        raise ConfigError(f"--geometry must be positive pixel counts, got {text!r}")
    return w, h
