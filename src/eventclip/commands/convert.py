"""``eventclip convert IN OUT``: any readable event format to any writable one, streaming."""

from __future__ import annotations

import argparse

from eventclip.commands._recording import add_geometry_option, geometry_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert an event file to another format (streaming)",
        description="Reads IN block by block and writes OUT; the output format comes from --format or OUT's "
        "extension (.raw = EVT 3.0, .dat, .aedat4, .npy/.npz/.csv, ...). On error the partial OUT is removed.",
    )
    p.add_argument("input", help="event file to read")
    p.add_argument("output", help="event file to write (overwritten)")
    p.add_argument("--format", default=None, help="output format name (e.g. evt3, evt2, dat)")
    p.add_argument("--in-format", default=None, help="input format name (skip detection)")
    add_geometry_option(p, "input sensor size WIDTHxHEIGHT in pixels, when the file does not say")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eventclip.io.convert import convert

    n = convert(args.input, args.output, format=args.format, in_format=args.in_format,
                geometry=geometry_arg(args))
    print(f"wrote {n} events to {Path(args.output)}")
    return 0
