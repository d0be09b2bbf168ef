"""``eventclip info PATH``: format, event count, geometry, time span, rate and ON/OFF counts of an event file."""

from __future__ import annotations

import argparse


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
    add_geometry_args(p)
    p.set_defaults(func=run)


def add_geometry_args(p: argparse.ArgumentParser) -> None:
    """--width/--height for files whose header does not give the sensor size (pixels)."""
    p.add_argument("--width", type=int, default=None, help="sensor width in pixels, when the file does not say")
    p.add_argument("--height", type=int, default=None, help="sensor height in pixels, when the file does not say")


def geometry_from_args(args: argparse.Namespace) -> tuple[int, int] | None:
    """(width, height) from --width/--height, None when neither is given; ConfigError when only one is."""
    from eventclip.errors import ConfigError

    if args.width is None and args.height is None:
        return None
    if args.width is None or args.height is None or args.width <= 0 or args.height <= 0:
        raise ConfigError("--width and --height must be given together, as positive pixel counts")
    return (args.width, args.height)


def run(args: argparse.Namespace) -> int:
    import json

    from eventclip.io.summary import summarize

    s = summarize(args.path, format=args.format, geometry=geometry_from_args(args))
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
