"""Republish what eventclipd publishes over ZeroMQ to an MQTT broker, Frigate style.

Why a separate process and not a daemon option: the daemon's publish path must never wait on a
network peer, and one bridge can serve several daemons (cameras) on a box. The bridge is a
ZeroMQ subscriber like any other; the MQTT client (paho-mqtt) runs its own network thread,
reconnects with back-off when the broker goes away, and the bridge counts what it could not
deliver instead of blocking.

Topics (``prefix`` = ``eventclip`` by default; ``sensor_id`` from each message):

- ``<prefix>/available``: ``online`` / ``offline``, retained, QoS 1; ``offline`` is the last will,
  so the broker says it when the bridge dies (the availability topic Home Assistant reads).
- ``<prefix>/<sensor_id>/status``: the daemon's status message, retained, QoS 1 (and sent again
  after every reconnection, since a restarted broker may have lost it).
- ``<prefix>/<sensor_id>/anomaly``: QoS 1 (the anomaly flags), queued while the broker is away.
- ``<prefix>/<sensor_id>/labels``, ``.../stats``: QoS 0.
- ``<prefix>/bridge/stats``: the bridge's own counters, QoS 0, every ``stats_interval_s``.

Payloads are the daemon's JSON messages unchanged (msgpack streams are turned into JSON).
Delivery: QoS 0 messages published while the broker is unreachable are dropped and counted
(``undelivered``); QoS 1 messages wait in a bounded queue (``max_queued``) and are counted once
it is full. A QoS 0 message written just before a broker dies, before the client notices, is lost
without a count (nothing acknowledges QoS 0).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from eventclip.errors import ConfigError

log = logging.getLogger(__name__)

QOS = {"status": 1, "anomaly": 1, "labels": 0, "stats": 0}
"""MQTT QoS per daemon topic."""
RETAINED = {"status"}


@dataclass(frozen=True)
class Broker:
    """Where the broker is: ``mqtt://[user[:password]@]host[:port]`` (1883) or ``mqtts://`` (8883, TLS)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> Broker:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ConfigError(f"--broker {url!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        try:
            port = parsed.port
        except ValueError:
            raise ConfigError(f"--broker {url!r}: the port is not a number") from None
        tls = parsed.scheme == "mqtts"
        return cls(parsed.hostname, port or (8883 if tls else 1883), tls,
                   unquote(parsed.username) if parsed.username else None,
                   unquote(parsed.password) if parsed.password else None)


def topic_name(sensor_id: str) -> str:
    """``sensor_id`` made safe as one MQTT topic level (``/``, ``+``, ``#`` become ``_``)."""
    return "".join("_" if c in "/+#" else c for c in sensor_id) or "_"


@dataclass
class Counts:
    """What the bridge did, per daemon topic; ``undelivered`` = dropped without reaching the broker."""

    received: Counter = field(default_factory=Counter)
    published: Counter = field(default_factory=Counter)
    undelivered: Counter = field(default_factory=Counter)
    queued: Counter = field(default_factory=Counter)
    """QoS 1 messages published while the broker was away (kept by the client, sent on reconnection)."""
    connects: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"received": dict(self.received), "published": dict(self.published),
                "undelivered": dict(self.undelivered), "queued": dict(self.queued), "connects": self.connects}


class MqttBridge:
    """Subscribes to ``endpoints`` (one or several eventclipd) and republishes to ``broker``.

    ``zmq_prefix`` is the daemons' ``topic_prefix``; ``prefix`` the MQTT topics' first level.
    :meth:`run` blocks until :meth:`stop` (or ``count`` messages, for tests and scripts).
    """

    def __init__(self, endpoints: list[str], broker: Broker, prefix: str = "eventclip",
                 zmq_prefix: str = "eventclip", client_id: str | None = None, max_queued: int = 1000,
                 stats_interval_s: float = 10.0) -> None:
        from eventclip._optional import require

        mqtt = require("paho.mqtt.client", "mqtt", "the MQTT bridge")
        if not prefix or prefix.endswith("/") or any(c in prefix for c in "+#"):
            raise ConfigError(f"--prefix {prefix!r}: must be non-empty, without '+', '#' or a trailing '/'")
        self.endpoints = endpoints
        self.prefix = prefix
        self.zmq_prefix = zmq_prefix
        self.stats_interval_s = stats_interval_s
        self.counts = Counts()
        self._status: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "")
        self.client.max_queued_messages_set(max_queued)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.will_set(self.available_topic, "offline", qos=1, retain=True)
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.broker = broker

    @property
    def available_topic(self) -> str:
        return f"{self.prefix}/available"

    # ---- MQTT side (paho's network thread) ------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s:%d refused the connection: %s", self.broker.host, self.broker.port, reason)
            return
        self.counts.connects += 1
        log.info("connected to %s:%d", self.broker.host, self.broker.port)
        client.publish(self.available_topic, "online", qos=1, retain=True)
        with self._lock:
            status = dict(self._status)
        for sensor, payload in status.items():  # a restarted broker may have lost the retained status
            client.publish(self._topic(sensor, "status"), payload, qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("lost the broker %s:%d (%s); reconnecting", self.broker.host, self.broker.port, reason)

    # ---- ZeroMQ side ----------------------------------------------------------------------------

    def _topic(self, sensor: str, name: str) -> str:
        return f"{self.prefix}/{sensor}/{name}"

    def forward(self, name: str, message: dict) -> bool:
        """Publish one daemon message (topic ``name``: labels, anomaly, stats, status); False when dropped."""
        from paho.mqtt.client import MQTT_ERR_NO_CONN, MQTT_ERR_SUCCESS

        sensor = topic_name(str(message.get("sensor_id", "")))
        payload = json.dumps(message, separators=(",", ":")).encode()
        qos = QOS.get(name, 0)
        retain = name in RETAINED
        self.counts.received[name] += 1
        if retain:
            with self._lock:
                self._status[sensor] = payload
        info = self.client.publish(self._topic(sensor, name), payload, qos=qos, retain=retain)
        queued = qos > 0 and info.rc == MQTT_ERR_NO_CONN  # kept by the client, sent after reconnecting
        if queued:
            self.counts.queued[name] += 1
        if info.rc == MQTT_ERR_SUCCESS or queued:
            self.counts.published[name] += 1
            return True
        self.counts.undelivered[name] += 1
        return False

    def _publish_stats(self) -> None:
        self.client.publish(f"{self.prefix}/bridge/stats", json.dumps(self.counts.to_dict()), qos=0)

    def run(self, count: int | None = None) -> Counts:
        """Connect (retrying in the background), forward messages until :meth:`stop`; return the counts."""
        import zmq

        from eventclip.daemon.messages import decode

        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt_string(zmq.SUBSCRIBE, f"{self.zmq_prefix}/")
        for endpoint in self.endpoints:
            sock.connect(endpoint)
        cut = len(self.zmq_prefix) + 1
        next_stats = time.monotonic() + self.stats_interval_s
        forwarded = 0
        try:
            while not self._stop.is_set() and (count is None or forwarded < count):
                if sock.poll(200):
                    topic, payload = sock.recv_multipart()
                    self.forward(topic.decode(errors="replace")[cut:], decode(payload))
                    forwarded += 1
                if time.monotonic() >= next_stats:
                    self._publish_stats()
                    next_stats = time.monotonic() + self.stats_interval_s
        finally:
            sock.close()
            self._publish_stats()
            info = self.client.publish(self.available_topic, "offline", qos=1, retain=True)
            if self._connected.is_set():
                info.wait_for_publish(2.0)
            self.client.disconnect()
            self.client.loop_stop()
        return self.counts

    def stop(self) -> None:
        """Make :meth:`run` return (signal-safe)."""
        self._stop.set()
