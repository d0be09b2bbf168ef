"""The subscriber side of the daemon's ZeroMQ topics: print what eventclipd publishes, one line per message.

Used by ``eventclip listen`` and by ``eventclipd --demo`` (which listens to itself), so it lives with
the daemon; the CLI imports it from here. Each line is ``<topic> <payload as JSON>`` (msgpack payloads
are shown as JSON too), or a short human line; a jump in a topic's ``seq`` is reported, since that
is how a subscriber sees loss.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import zmq
from zmq.auth import load_certificate

from eventclip.daemon.messages import decode
from eventclip.errors import ConfigError


def print_stream(
    endpoint: str | list[str],
    topics: list[str],
    out: TextIO,
    count: int | None = None,
    until_offline: bool = True,
    curve: tuple[Path, Path] | None = None,
    timeout_s: float | None = None,
    pretty: bool = False,
    line: Callable[[str, dict], str] | None = None,
) -> int:
    """Subscribe to ``topics`` (prefixes; [""] = all) of one or several endpoints and print messages;
    return how many were printed.

    Stops after ``count`` messages, once every endpoint's daemon said ``offline`` when ``until_offline``, or after
    ``timeout_s`` seconds with no message. A malformed endpoint raises ConfigError (exit status 2).
    ``curve`` = (client secret key file, server public key file). ``pretty`` prints one short human line
    per message instead of the JSON payload; ``line(topic, msg)`` makes each line instead (``eventclipd --demo``).
    """
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        client_public, client_secret = load_certificate(str(curve[0]))
        server_public, _ = load_certificate(str(curve[1]))
        sock.curve_secretkey = client_secret
        sock.curve_publickey = client_public
        sock.curve_serverkey = server_public
    for topic in topics or [""]:
        sock.setsockopt_string(zmq.SUBSCRIBE, topic)
    endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    for ep in endpoints:
        try:
            sock.connect(ep)
        except zmq.ZMQError as exc:
            sock.close()
            raise ConfigError(f"cannot connect to {ep!r}: {exc}; give an endpoint like tcp://127.0.0.1:5556 "
                              "(or ipc:///path/to/socket)") from None
    last_seq: dict[tuple[str, str], int] = {}
    offline: set[str] = set()
    printed = 0
    try:
        while count is None or printed < count:
            if timeout_s is not None and not sock.poll(int(timeout_s * 1000)):
                break
            topic_b, payload = sock.recv_multipart()
            topic = topic_b.decode(errors="replace")
            msg = decode(payload)
            seq, key = msg.get("seq"), (topic, str(msg.get("sensor_id")))
            if isinstance(seq, int) and key in last_seq and seq != last_seq[key] + 1:
                where = f"{topic} ({key[1]})" if len(endpoints) > 1 else topic
                print(f"# {where}: {seq - last_seq[key] - 1} message(s) lost before seq {seq}", file=out)
            if isinstance(seq, int):
                last_seq[key] = seq
            if line is not None:
                text = line(topic, msg)
            else:
                text = pretty_line(topic, msg) if pretty else f"{topic} {json.dumps(msg, separators=(',', ':'))}"
            if pretty and len(endpoints) > 1:
                text = f"{key[1]}: {text}"
            print(text, file=out, flush=True)
            printed += 1
            if until_offline and topic.endswith("/status") and msg.get("state") == "offline":
                offline.add(key[1])
                if len(offline) >= len(endpoints):
                    break
    finally:
        sock.close()
    return printed


def pretty_line(topic: str, msg: dict) -> str:
    """A short human-readable line for one message (``--pretty``, ``eventclipd --demo``)."""
    kind = topic.rsplit("/", 1)[-1]
    if kind == "labels":
        labels = ", ".join(f"{lab['label']} {lab['score']:.2f}" for lab in msg["labels"]) or "(none)"
        anomaly = "" if msg["anomaly_score"] is None else f"  anomaly {msg['anomaly_score']:.2f}"
        flag = " ANOMALY" if msg["anomaly"] else ""
        return (f"[{msg['t_start_us'] / 1e6:9.3f} s] {msg['n_events']:>8} ev  {labels}{anomaly}{flag}"
                f"  ({msg['latency_ms']:.1f} ms)")
    if kind == "anomaly":
        return f"[{msg['t_start_us'] / 1e6:9.3f} s] anomaly {msg['score']:.2f} (threshold {msg['threshold']:.2f})"
    if kind == "stats":
        lat = msg["latency_ms"]["p99"]
        return (f"stats: {msg['events_per_s'] / 1e6:.2f} Mev/s, {msg['windows_per_s']:.1f} windows/s, "
                f"p99 {'-' if lat is None else f'{lat:.1f} ms'}, dropped {msg['drops']['windows_policy']} windows")
    if kind == "status":
        return f"status: {msg['state']} {msg['detail']}".rstrip()
    return f"{topic} {json.dumps(msg, separators=(',', ':'))}"
