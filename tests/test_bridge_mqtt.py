"""``eventclip bridge mqtt`` against a real Mosquitto broker on loopback (started and restarted by the
fixture), a real eventclipd process and its real ZeroMQ socket: the MQTT topics carry exactly what
the daemon published, the bridge reconnects after a broker restart and counts what it dropped, the
retained status and availability come back, and the last will says ``offline`` when the bridge dies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from eventclip.errors import ConfigError
from tests._looping_daemon import looping_daemon
from tests.test_daemon_stream import (  # noqa: F401 - fixtures
    Collector,
    _free_endpoint,
    _text_cache,
    package,
    prompts,
)

mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (extra: mqtt)")


def _mosquitto() -> str:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None)
    if exe is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    return exe


class Mosquitto:
    """A real broker on a free loopback port, no persistence (a restart forgets retained messages)."""

    def __init__(self, folder: Path) -> None:
        self.exe = _mosquitto()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(f"mosquitto exited: {self.proc.stderr.read().decode()}")
                time.sleep(0.05)
        pytest.fail("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture()
def broker(tmp_path: Path):
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """A paho client keeping every message under ``eventclip/#``; re-subscribes after reconnecting."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, *_: c.subscribe("eventclip/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def topic(self, suffix: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith(suffix)]

    def raw(self, topic: str) -> list[tuple[bytes, bool]]:
        with self.lock:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def wait_for(self, predicate, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _bridge(endpoint: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "eventclip.cli", "bridge", "mqtt", endpoint, "--broker",
                             f"mqtt://127.0.0.1:{port}", "--stats-interval", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_broker_url_is_parsed_and_bad_ones_name_the_flag():
    from eventclip.bridges.mqtt import Broker, topic_name

    assert Broker.parse("mqtt://127.0.0.1") == Broker("127.0.0.1", 1883)
    assert Broker.parse("mqtts://u:p%40ss@broker.lan:8884") == Broker("broker.lan", 8884, True, "u", "p@ss")
    for bad in ("127.0.0.1:1883", "http://x", "mqtt://host:port"):
        with pytest.raises(ConfigError, match="--broker"):
            Broker.parse(bad)
    assert topic_name("cam/1+#") == "cam_1__"


def test_daemon_stream_on_mqtt_survives_a_broker_restart(package, prompts, broker, tmp_path):  # noqa: F811
    endpoint = _free_endpoint()
    coll = Collector(endpoint)
    daemon = looping_daemon(package, prompts, tmp_path, endpoint, "--wait-for-subscribers", "2",
                            config="sensor_id: door-cam\n")
    bridge = _bridge(endpoint, broker.port)
    sub = Subscriber(broker.port)
    try:
        assert sub.wait_for(lambda: len(sub.topic("door-cam/labels")) > 20 and sub.topic("door-cam/anomaly")
                            and sub.topic("door-cam/stats") and sub.topic("door-cam/status"), 60), bridge.stderr
        assert sub.raw("eventclip/available")[-1] == (b"online", False)
        broker.stop()  # mid-stream: the daemon goes on publishing, the bridge loses the broker
        during = len(coll.topic("labels")) + 40
        assert coll.wait_for(lambda t, m: t.endswith("/labels") and len(coll.topic("labels")) > during)
        broker.start()
        last_seq = max(m["seq"] for m in sub.topic("door-cam/labels"))
        assert sub.wait_for(lambda: max(m["seq"] for m in sub.topic("door-cam/labels")) > last_seq + 20, 60)
        assert sub.wait_for(lambda: any(s["undelivered"].get("labels", 0) > 0 and s["connects"] >= 2
                                        for s in sub.topic("eventclip/bridge/stats")), 30)
        late = Subscriber(broker.port)  # connects after the restart: retained messages only
        try:
            assert late.wait_for(lambda: late.raw("eventclip/available") and late.topic("door-cam/status"), 30)
            assert late.raw("eventclip/available")[0] == (b"online", True)
            assert late.topic("door-cam/status")[0]["state"] == "online"
        finally:
            late.close()
        bridge.send_signal(signal.SIGTERM)
        _, err = bridge.communicate(timeout=30)
        assert bridge.returncode == 0, err
        assert sub.wait_for(lambda: sub.raw("eventclip/available")[-1] == (b"offline", False), 10)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        assert coll.done.wait(10)
    finally:
        for proc in (bridge, daemon):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        sub.close()
        coll.close()
    counts = json.loads(err.rsplit("bridge stopped: ", 1)[1])
    assert counts["undelivered"]["labels"] > 0 and counts["connects"] >= 2
    assert counts["published"]["labels"] + counts["undelivered"]["labels"] == counts["received"]["labels"]
    # QoS 1: the anomaly messages of the outage were kept for the broker, none dropped
    assert counts["undelivered"].get("anomaly", 0) == 0 and counts["queued"]["anomaly"] > 0
    # every message that reached MQTT is the daemon's message for that seq, unchanged
    published = {(t.rsplit("/", 1)[1], m["seq"]): m for t, m in coll.messages}
    for name in ("labels", "anomaly", "stats", "status"):
        got = sub.topic(f"door-cam/{name}")
        assert got and all(m == published[(name, m["seq"])] for m in got)


def test_last_will_says_offline_when_the_bridge_dies(broker):
    endpoint = _free_endpoint()
    sub = Subscriber(broker.port)
    bridge = _bridge(endpoint, broker.port)
    try:
        assert sub.wait_for(lambda: sub.raw("eventclip/available") == [(b"online", False)], 30), bridge.stderr
        bridge.kill()  # no clean goodbye: the broker publishes the will
        bridge.wait(10)
        assert sub.wait_for(lambda: sub.raw("eventclip/available")[-1] == (b"offline", False), 30)
    finally:
        if bridge.poll() is None:
            bridge.kill()
        sub.close()
