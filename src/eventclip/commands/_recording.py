"""Options shared by the commands that window and encode a recording (classify, anomaly, fewshot).

Why one place: these commands must cut and encode recordings the same way, so their options and
the parsing of ``--geometry`` are defined once.
"""

from __future__ import annotations

import argparse


def add_recording_options(parser: argparse.ArgumentParser) -> None:
    """--window-us, --backend, --format and --geometry, with the same defaults everywhere."""
    parser.add_argument("--window-us", type=int, default=None, help="window length in µs (default: the model card's)")
    parser.add_argument("--backend", default="auto", help="auto, torch, onnxruntime or tensorrt")
    parser.add_argument("--format", default=None, help="event file format, skipping detection (e.g. evt3, dat)")
    parser.add_argument("--geometry", default=None, help="WIDTHxHEIGHT for files that do not say")


def parse_geometry(text: str | None) -> tuple[int, int] | None:
    """'640x480' -> (640, 480); ConfigError naming the option otherwise."""
    from eventclip.errors import ConfigError

    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--geometry must look like 640x480, got {text!r}") from exc
    return w, h
