"""``eventclip sensors list``: the cameras each installed backend sees, and why a backend is unavailable."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from eventclip.errors import ConfigError
from eventclip.sensors.base import create
from eventclip.sensors.discovery import discover


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
        description="Asks every sensor kind that can list cameras (the Metavision SDK / neuromorphic-drivers for "
        "prophesee, dv-processing for inivation, OpenCV for video) for its cameras; a kind that cannot run here "
        "says why and what to install. --json prints a list of {kind, available, reason, devices}.",
    )
    lst.add_argument("--json", action="store_true", help="print JSON instead of text")
    lst.set_defaults(func=run_list)
    watch = sub.add_parser(
        "watch",
        help="open a source and print its event rate, gaps and status changes",
        description="Opens the source a config describes and prints one line per --every seconds of stream time "
        "(events, rate, gaps), plus every status change, until the stream ends, --seconds pass or Ctrl-C. "
        "Example: eventclip sensors watch --set kind=inivation --set host=127.0.0.1 --set port=7777",
    )
    watch.add_argument("--config", help="YAML file holding the source's config (a mapping with 'kind')")
    watch.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="set one config field (YAML value); repeatable; overrides --config")
    watch.add_argument("--seconds", type=float, default=None, help="stop after this much stream time (s)")
    watch.add_argument("--every", type=float, default=1.0, help="report interval in stream time (s)")
    watch.set_defaults(func=run_watch)


def run_list(args: argparse.Namespace) -> int:
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


def watch_config(args: argparse.Namespace) -> dict:
    """The source config from --config and --set (YAML values)."""
    cfg: dict = {}
    if args.config:
        loaded = yaml.safe_load(Path(args.config).read_text())
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {args.config}: expected a mapping with 'kind', got {type(loaded).__name__}")
        cfg.update(loaded)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE")
        cfg[key] = yaml.safe_load(value)
    return cfg


def run_watch(args: argparse.Namespace) -> int:
    try:
        src = create(watch_config(args), on_status=lambda state, detail: print(f"status {state}: {detail}", flush=True))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"sensor config: {problems}") from exc
    every_us = round(args.every * 1e6)
    total = gaps = 0
    start = mark = None
    count = 0
    with src:
        print(f"{src.name}  {src.geometry}  clock={src.clock}", flush=True)
        for chunk in src:
            if chunk.meta.get("gap"):
                gaps += 1
                print(f"gap {chunk.meta}", flush=True)
                continue
            t = (chunk.t_end_us if chunk.t_end_us is not None
                 else (int(chunk.events["t"][-1]) + 1 if len(chunk) else None))
            if t is None:
                continue
            start = t if start is None else start
            mark = t if mark is None else mark
            count += len(chunk)
            total += len(chunk)
            if t - mark >= every_us:
                print(f"t={(t - start) / 1e6:9.3f} s  events={count:<10d} "
                      f"rate={count / ((t - mark) / 1e6) / 1e6:.3f} Mev/s", flush=True)
                mark, count = t, 0
            if args.seconds is not None and t - start >= args.seconds * 1e6:
                break
    print(f"total events={total} gaps={gaps}")
    return 0
