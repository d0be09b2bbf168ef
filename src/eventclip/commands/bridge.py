"""``eventclip bridge mqtt [ENDPOINT ...] --broker mqtt://HOST:PORT``: eventclipd's messages on MQTT topics."""

from __future__ import annotations

import argparse
import json
import signal
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``bridge`` with its ``mqtt`` subcommand."""
    parser = subparsers.add_parser("bridge", help="republish what eventclipd publishes to other systems (MQTT)")
    sub = parser.add_subparsers(dest="target", metavar="TARGET")
    sub.required = True
    p = sub.add_parser(
        "mqtt", help="republish labels, anomaly, stats and status to an MQTT broker (Home Assistant, Frigate style)",
        description="Subscribes to one or more eventclipd over ZeroMQ and publishes each message as JSON on "
        "PREFIX/SENSOR_ID/{labels,anomaly,stats,status}; status is retained, anomaly is QoS 1, PREFIX/available "
        "is online/offline (retained, last will). Reconnects when the broker restarts and counts what it could "
        "not deliver (PREFIX/bridge/stats). Topic schema: docs/daemon.md, MQTT.",
    )
    p.add_argument("endpoints", nargs="*", default=["tcp://127.0.0.1:5556"],
                   help="eventclipd ZeroMQ endpoints (default tcp://127.0.0.1:5556)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883",
                   help="mqtt://[USER[:PASSWORD]@]HOST[:PORT] or mqtts:// for TLS (default mqtt://127.0.0.1:1883)")
    p.add_argument("--prefix", default="eventclip", help="first level of the MQTT topics (default eventclip)")
    p.add_argument("--topic-prefix", default="eventclip", help="the daemons' ZeroMQ topic prefix (default eventclip)")
    p.add_argument("--client-id", default=None, help="MQTT client id (default: one the broker assigns)")
    p.add_argument("--max-queued", type=int, default=1000,
                   help="QoS 1 messages kept while the broker is away; beyond, they are dropped and counted")
    p.add_argument("--stats-interval", type=float, default=10.0, help="seconds between PREFIX/bridge/stats")
    p.set_defaults(func=_run_mqtt)


def _run_mqtt(args: argparse.Namespace) -> int:
    from eventclip.bridges.mqtt import Broker, MqttBridge
    from eventclip.errors import ConfigError

    if args.max_queued <= 0:
        raise ConfigError(f"--max-queued must be > 0, got {args.max_queued}")
    if args.stats_interval <= 0:
        raise ConfigError(f"--stats-interval must be > 0 s, got {args.stats_interval}")
    broker = Broker.parse(args.broker)
    bridge = MqttBridge(args.endpoints, broker, args.prefix, args.topic_prefix, args.client_id,
                        args.max_queued, args.stats_interval)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: bridge.stop())
    print(f"bridging {', '.join(args.endpoints)} -> {broker.host}:{broker.port} under {args.prefix}/",
          file=sys.stderr, flush=True)
    counts = bridge.run()
    print(f"bridge stopped: {json.dumps(counts.to_dict())}", file=sys.stderr)
    return 0
