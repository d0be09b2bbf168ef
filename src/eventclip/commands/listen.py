"""``eventclip listen ENDPOINT [ENDPOINT ...] [--topic T ...]``: print what eventclipd publishes, one line per message.

Why in the main CLI: the first thing an operator does after starting the daemon is check that it
talks. Each line is ``<topic> <payload as JSON>`` (msgpack payloads are shown as JSON too), and a
jump in a topic's ``seq`` is reported, since that is how a subscriber sees loss. Several endpoints
(several cameras, one daemon each) are listened to on one socket; ``seq`` is followed per sensor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eventclip.daemon.subscriber import print_stream


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``eventclip listen``."""
    p = subparsers.add_parser("listen", help="print the messages an eventclipd publishes",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("endpoint", nargs="+", help="e.g. tcp://127.0.0.1:5556; several for several daemons (cameras)")
    p.add_argument("--topic", action="append", default=[],
                   help="topic prefix to subscribe to (repeatable; default: everything)")
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.add_argument("--timeout", type=float, help="stop after this many seconds without a message")
    p.add_argument("--pretty", action="store_true", help="one short human-readable line per message")
    p.add_argument("--keep-going", action="store_true", help="do not stop at the daemon's offline status")
    p.add_argument("--curve-client-key", type=Path, help="client secret key file (CURVE)")
    p.add_argument("--curve-server-key", type=Path, help="server public key file (CURVE)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from eventclip.errors import ConfigError

    curve = None
    if args.curve_client_key or args.curve_server_key:
        if not (args.curve_client_key and args.curve_server_key):
            raise ConfigError("CURVE needs both --curve-client-key and --curve-server-key")
        curve = (args.curve_client_key, args.curve_server_key)
    try:
        print_stream(args.endpoint, args.topic, sys.stdout, args.count, not args.keep_going, curve, args.timeout,
                     args.pretty)
    except KeyboardInterrupt:
        pass
    return 0
