"""The ZeroMQ publisher: multipart ``[topic, payload]`` on an XPUB socket that never blocks.

Why XPUB with ``XPUB_NODROP``: a plain PUB socket drops silently when a subscriber's queue reaches
the high-water mark, so the daemon could not count what was lost. With ``XPUB_NODROP`` a send
that would overflow fails with EAGAIN (we send non-blocking), and we count it per topic. The
sequence number is consumed even for a dropped message, so subscribers see the gap. XPUB also
tells us when subscribers arrive, which :meth:`Publisher.wait_for_subscribers` uses so a test or a
recorder can catch a stream from its first window.

Observers (:attr:`Publisher.observers`, e.g. the live page's hub) get each message as the dict
that went on the wire, with its sequence number, so what they show is what subscribers received.

The socket is used from several pipeline threads (labels, stats, status); a lock serialises
access, which ZeroMQ allows (a socket may move between threads with a full memory barrier).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import zmq

from eventclip.daemon.config import CurveConfig
from eventclip.daemon.messages import TOPICS, encode_data
from eventclip.errors import ConfigError

log = logging.getLogger(__name__)


class Publisher:
    """Binds ``endpoint`` and publishes messages under ``<prefix>/<topic>`` with per-topic seq."""

    def __init__(
        self,
        endpoint: str,
        sensor_id: str,
        prefix: str = "eventclip",
        encoding: str = "json",
        send_hwm: int = 1000,
        curve: CurveConfig | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        self.sensor_id = sensor_id
        self.prefix = prefix
        self.encoding = encoding
        self._ctx = context or zmq.Context.instance()
        self._lock = threading.Lock()
        self._seq: dict[str, int] = defaultdict(int)
        self.dropped: dict[str, int] = {t: 0 for t in TOPICS}
        self.sent: dict[str, int] = {t: 0 for t in TOPICS}
        self.subscriptions: set[bytes] = set()
        self.observers: list[Callable[[str, dict], None]] = []
        """Called with (topic name, message dict) for every message sent or dropped; must be quick."""
        self._subscribers = 0
        self._auth = None
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.SNDHWM, send_hwm)
        self._sock.setsockopt(zmq.XPUB_NODROP, 1)
        self._sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._sock.setsockopt(zmq.LINGER, 500)
        if curve is not None:
            self._setup_curve(curve)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise ConfigError(f"publish: cannot bind {endpoint!r}: {exc}") from None
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def _setup_curve(self, curve: CurveConfig) -> None:
        from zmq.auth import load_certificate
        from zmq.auth.thread import ThreadAuthenticator

        try:
            public, secret = load_certificate(str(curve.server_secret_key))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"curve.server_secret_key: cannot load {curve.server_secret_key}: {exc}") from None
        if secret is None:
            raise ConfigError(f"curve.server_secret_key: {curve.server_secret_key} holds no secret key")
        if not curve.authorized_clients.is_dir():
            raise ConfigError(f"curve.authorized_clients: {curve.authorized_clients} is not a folder")
        self._auth = ThreadAuthenticator(self._ctx)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(curve.authorized_clients))
        self._sock.curve_secretkey = secret
        self._sock.curve_publickey = public
        self._sock.curve_server = True

    def _drain_subscriptions(self) -> None:
        while True:
            try:
                msg = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if msg[:1] == b"\x01":
                self.subscriptions.add(msg[1:])
                self._subscribers += 1
            elif msg[:1] == b"\x00":
                self._subscribers = max(0, self._subscribers - 1)

    @property
    def subscriber_count(self) -> int:
        """Subscriptions seen minus unsubscriptions (one per subscriber and topic filter)."""
        with self._lock:
            self._drain_subscriptions()
            return self._subscribers

    def wait_for_subscribers(self, n: int, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """Block until ``n`` subscriptions arrived, ``timeout_s`` passed or ``stop`` is set; True when they arrived."""
        deadline = time.monotonic() + timeout_s
        while self.subscriber_count < n:
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                return False
            time.sleep(0.01)
        return True

    def topic(self, name: str) -> str:
        """Full topic string for a short name (``labels`` -> ``eventclip/labels``)."""
        return f"{self.prefix}/{name}"

    def send(self, name: str, **fields: object) -> bool:
        """Build the ``name`` topic's message from ``fields`` and publish it without blocking.

        The sequence number and host time are assigned here, under the lock, so each topic's
        numbers are gapless and in send order whichever thread sends. Returns False (and counts
        the drop) when a subscriber's queue is at the high-water mark.
        """
        with self._lock:
            seq = self._seq[name]
            self._seq[name] = seq + 1
            message = TOPICS[name](sensor_id=self.sensor_id, seq=seq, host_time_us=time.time_ns() // 1000, **fields)
            data = message.model_dump(mode="json", by_alias=True)
            frames = [self.topic(name).encode(), encode_data(data, self.encoding)]
            self._drain_subscriptions()
            for observer in self.observers:
                observer(name, data)
            try:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                self.dropped[name] += 1
                return False
            self.sent[name] += 1
            return True

    def close(self) -> None:
        """Close the socket (lingering up to 0.5 s for queued messages) and the authenticator."""
        with self._lock:
            self._sock.close()
        if self._auth is not None:
            self._auth.stop()
