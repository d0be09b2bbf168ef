"""``eventclip sensors list``: the cameras each installed backend sees, and why a backend is unavailable."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sensors",
        help="live event sources (Prophesee, iniVation, webcams)",
        description="Inspect the live sources eventclip can read. See docs/sensors.md.",
    )
    sub = p.add_subparsers(dest="sensors_command", metavar="ACTION")
    sub.required = True
    lst = sub.add_parser(
        "list",
        help="cameras each backend sees; unavailable backends and why",
        description="Asks the Metavision SDK / neuromorphic-drivers (prophesee), dv-processing (inivation) and "
        "OpenCV (video) for cameras. --json prints a list of {kind, available, reason, devices}.",
    )
    lst.add_argument("--json", action="store_true", help="print JSON instead of text")
    lst.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    import json

    from eventclip.sensors.discovery import discover

    reports = discover()
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
        return 0
    for r in reports:
        state = "available" if r.available else "UNAVAILABLE"
        print(f"{r.kind:<10} {state}" + (f": {r.reason}" if r.reason else ""))
        for d in r.devices:
            model = f" ({d['model']})" if d.get("model") else ""
            print(f"    {d['serial']}{model} via {d['backend']}")
    return 0
