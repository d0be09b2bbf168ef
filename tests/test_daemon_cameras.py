"""Several cameras on one box: the template unit's example configs (one per camera) are valid and
share no port or sensor id, and one `eventclip listen` follows two daemons' real ZeroMQ sockets."""

from __future__ import annotations

import subprocess
import sys

from eventclip.daemon.config import load_config, parse_http_address
from eventclip.daemon.publish import Publisher
from tests.conftest import ROOT

CAMERAS = sorted((ROOT / "systemd" / "cameras").glob("*.yaml"))


def test_example_camera_configs_are_valid_and_share_no_port_or_id():
    configs = [load_config(path, {}) for path in CAMERAS]
    assert len(configs) == 2
    for field in ("sensor_id", "publish", "metrics_port", "http", "source"):
        values = [getattr(c, field) for c in configs]
        assert None not in values and len({str(v) for v in values}) == len(values), field
    assert len({parse_http_address(c.http)[1] for c in configs} | {c.metrics_port for c in configs}) == 4


def test_one_listener_follows_two_daemons_and_stops_when_both_are_offline():
    door, yard = Publisher("tcp://127.0.0.1:*", "door"), Publisher("tcp://127.0.0.1:*", "yard")
    proc = subprocess.Popen([sys.executable, "-m", "eventclip.cli", "listen", door.endpoint, yard.endpoint,
                             "--topic", "eventclip/status", "--pretty"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert door.wait_for_subscribers(1, 30.0) and yard.wait_for_subscribers(1, 30.0)
        door.send("status", state="online", detail="d0")
        yard.send("status", state="online", detail="y0")
        yard._seq["status"] += 2  # as if two of yard's messages were lost; door's numbering is its own
        yard.send("status", state="online", detail="y3")
        door.send("status", state="offline", detail="bye")  # the listener goes on: yard is still online
        yard.send("status", state="offline", detail="bye")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        door.close()
        yard.close()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert sorted(lines) == sorted([
        "door: status: online d0", "yard: status: online y0",
        "# eventclip/status (yard): 2 message(s) lost before seq 3", "yard: status: online y3",
        "door: status: offline bye", "yard: status: offline bye"])
    assert lines[-1].endswith("status: offline bye")  # each socket keeps its order; the second offline ends it
