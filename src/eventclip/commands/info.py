"""``eventclip info PATH``: format, event count, geometry, time span, rate and ON/OFF counts of an event file."""

from __future__ import annotations

import argparse

from eventclip.commands._recording import add_geometry_option, geometry_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe an event file (format, events, geometry, time span, rate, ON/OFF)",
        description="Reads the whole file once, in blocks (bounded memory). --json prints one object with the keys "
        "format, events, width, height, t_first, t_last, on, off (times in µs) and more.",
    )
    p.add_argument("path", help="event file (RAW, DAT, HDF5, AEDAT, .bin, .es, .npy/.npz/.csv, ...)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--format", default=None, help="skip detection and read as this format")
    add_geometry_option(p, "sensor size WIDTHxHEIGHT in pixels, when the file does not say")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from eventclip.io.summary import summarize

    s = summarize(args.path, format=args.format, geometry=geometry_arg(args))
    if args.json:
        print(json.dumps(s.to_dict(), indent=2))
        return 0
    span = "-" if s.t_first is None else f"{s.t_first} .. {s.t_last} µs"
    lines = [
        f"file       {s.path}",
        f"format     {s.format}",
        f"geometry   {s.width}x{s.height} ({s.metadata.get('geometry_source', 'format')})",
        f"events     {s.events}",
        f"time       {span}",
        f"duration   {s.duration_us / 1e6:.6f} s",
        f"rate       {s.rate_ev_per_s / 1e6:.3f} Mev/s",
        f"on / off   {s.on} / {s.off}",
    ]
    if s.triggers:
        lines.append(f"triggers   {s.triggers}")
    print("\n".join(lines))
    return 0
