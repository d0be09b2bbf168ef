"""eventclipd's parts on their own: config, message schemas, queues, publisher, sd_notify, listen."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import zmq

from eventclip.daemon import messages
from eventclip.daemon.config import DaemonConfig, load_config
from eventclip.daemon.notify import Notifier
from eventclip.daemon.publish import Publisher
from eventclip.daemon.queues import END, EventInbox, Hole, WindowQueue
from eventclip.errors import ConfigError

# ---- config -----------------------------------------------------------------------------------


def test_flags_override_yaml_and_paths_resolve_against_the_file(tmp_path: Path) -> None:
    cfg_file = tmp_path / "d.yaml"
    cfg_file.write_text("source: {kind: replay, path: rec.raw}\nprompts: p.yaml\nwindow_us: 10000\ntop_k: 3\n")
    cfg = load_config(cfg_file, {"window_us": 20000, "top_k": None})
    assert cfg.window_us == 20000  # flag wins
    assert cfg.top_k == 3  # absent flag leaves the file's value
    assert cfg.source.path == tmp_path / "rec.raw"
    assert cfg.publish.startswith("tcp://127.0.0.1:")


def test_bad_field_is_named(tmp_path: Path) -> None:
    cfg_file = tmp_path / "d.yaml"
    cfg_file.write_text("source: {kind: replay, path: x.raw}\nprompts: p.yaml\nwindow_us: -5\nbogus: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_file, {})
    text = str(err.value)
    assert "window_us" in text and "bogus" in text and str(cfg_file) in text


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    cfg_file = tmp_path / "d.yaml"
    cfg_file.write_text("source: {kind: replay}\nprompts: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(cfg_file, {})


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [("tcp://127.0.0.1:5556", True), ("tcp://localhost:1", True), ("tcp://[::1]:5", True),
     ("ipc:///tmp/x", True), ("tcp://0.0.0.0:5556", False), ("tcp://*:5556", False), ("tcp://10.1.2.3:1", False)],
)
def test_loopback_by_default(endpoint: str, ok: bool) -> None:
    fields = {"source": {"kind": "prophesee"}, "prompts": "p.yaml", "publish": endpoint}
    if ok:
        DaemonConfig.model_validate(fields)
    else:
        with pytest.raises(ValueError, match="allow_remote"):
            DaemonConfig.model_validate(fields)
        DaemonConfig.model_validate({**fields, "allow_remote": True})


def test_replay_needs_input() -> None:
    with pytest.raises(ConfigError, match=r"source\.replay\.path: Field required"):
        load_config(None, {"sensor": "replay", "prompts": "p.yaml"})


# ---- messages and schema -------------------------------------------------------------------


def test_committed_schema_files_equal_generated() -> None:
    for name, schema in messages.json_schemas().items():
        path = messages.SCHEMA_DIR / name
        assert path.is_file(), f"{path} missing: run python -m eventclip.daemon.messages"
        assert json.loads(path.read_text()) == schema, f"{path} is stale: run python -m eventclip.daemon.messages"


def _labels_fields() -> dict:
    return dict(sensor_id="s", seq=3, host_time_us=1, t_start_us=0, t_end_us=33000, n_events=7,
                labels=[{"label": "cat", "score": 0.9}], anomaly_score=0.2, anomaly=False, latency_ms=1.5)


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_encoded_messages_validate_against_schema(encoding: str) -> None:
    msg = messages.LabelsMessage(**_labels_fields())
    data = messages.decode(messages.encode(msg, encoding))
    schema = messages.json_schemas()["labels.v1.json"]
    jsonschema.validate(data, schema)
    assert data["schema"] == "eventclip.labels/1"
    bad = dict(data, seq=-1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(data, extra=1), schema)


# ---- queues --------------------------------------------------------------------------------


def test_drop_oldest_keeps_newest_and_counts() -> None:
    q = WindowQueue(3, "drop_oldest")
    for i in range(10):
        q.put(i)
    q.put(END)
    assert q.dropped == 7
    assert q.get_batch(10, 0.1) == [7, 8, 9]
    assert q.get_batch(10, 0.1) == [END]
    assert q.get_batch(10, 0.01) == []


def test_keep_every_nth_thins_when_lagging() -> None:
    q = WindowQueue(8, "keep_every_nth", keep_every_n=3)
    for i in range(1, 15):
        q.put(i)
    # below half full everything is admitted; from then on only every 3rd arrival
    assert q.get_batch(100, 0.1) == [1, 2, 3, 4, 6, 9, 12]
    assert q.dropped == 7
    for i in range(15, 40):
        q.put(i)
    assert len(q) == 8 and q.dropped == 7 + 25 - 8  # full anyway: oldest evicted too


def _chunk(t0: int, n: int, t_end: int | None = None):
    from eventclip.events import EventChunk, Geometry, make_events

    return EventChunk(make_events(np.zeros(n, int), np.zeros(n, int), np.zeros(n, int), np.arange(t0, t0 + n)),
                      Geometry(4, 4), t_end_us=t_end)


def test_inbox_never_blocks_a_live_source_and_drops_the_oldest_into_a_counted_hole() -> None:
    box = EventInbox(max_events=100)
    assert box.offer(_chunk(0, 60, 100), 1.0) == 0 and box.offer(_chunk(100, 40, 200), 2.0) == 0
    assert box.offer(_chunk(200, 30, 300), 3.0) == 60  # the oldest chunk makes room, never the newest
    assert box.pending_events == 70
    assert box.offer(_chunk(300, 50, 400), 4.0) == 40  # the next oldest: merged into the same hole
    hole = box.get(0.1)
    assert isinstance(hole, Hole) and (hole.t_first_us, hole.t_last_us, hole.t_end_us, hole.n_events) == (
        0, 139, 200, 100)
    chunk, handed_at = box.get(0.1)
    assert int(chunk.events["t"][0]) == 200 and handed_at == 3.0
    assert box.offer(_chunk(400, 500, 900), 5.0) == 50 + 500  # larger than the bound: dropped too
    hole = box.get(0.1)
    assert (hole.t_first_us, hole.t_last_us, hole.n_events) == (300, 899, 550) and box.pending_events == 0
    box.end()
    assert box.get(0.1) is END and box.get(0.01) is None


def test_inbox_put_waits_for_room_for_sources_that_can_wait() -> None:
    box = EventInbox(max_events=100)
    assert box.put(_chunk(0, 80), 1.0, timeout=0.1)
    t0 = time.monotonic()
    assert not box.put(_chunk(80, 30), 2.0, timeout=0.2)  # no room: refused after the timeout, nothing lost
    assert time.monotonic() - t0 >= 0.19 and box.pending_events == 80
    threading.Timer(0.1, lambda: box.get(0.1)).start()
    assert box.put(_chunk(80, 30), 2.0, timeout=5.0)  # room made by the consumer
    assert box.put(_chunk(110, 20), 3.0, timeout=0.1)
    assert box.pending_events == 50 and len(box) == 2


def test_window_queue_reports_each_dropped_window() -> None:
    dropped = []
    q = WindowQueue(2, "drop_oldest", on_drop=dropped.append)
    for i in range(5):
        q.put(i)
    assert dropped == [0, 1, 2] and q.dropped == 3


# ---- publisher -----------------------------------------------------------------------------


def _sub(endpoint: str, topic: str = "", hwm: int = 1000) -> zmq.Socket:
    s = zmq.Context.instance().socket(zmq.SUB)
    s.setsockopt(zmq.RCVHWM, hwm)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt_string(zmq.SUBSCRIBE, topic)
    s.connect(endpoint)
    return s


def _status(pub: Publisher, i: int) -> bool:
    return pub.send("status", state="online", detail=f"n{i}")


def test_publisher_topics_seq_and_schema() -> None:
    pub = Publisher("tcp://127.0.0.1:*", "cam0", prefix="site")
    sub = _sub(pub.endpoint, "site/")
    try:
        assert pub.wait_for_subscribers(1, 5.0)
        for i in range(5):
            assert _status(pub, i)
        schema = messages.json_schemas()["status.v1.json"]
        for i in range(5):
            assert sub.poll(5000)
            topic, payload = sub.recv_multipart()
            data = json.loads(payload)
            jsonschema.validate(data, schema)
            assert topic == b"site/status" and data["seq"] == i and data["sensor_id"] == "cam0"
    finally:
        sub.close()
        pub.close()


def test_stalled_subscriber_drops_at_hwm_and_counts_without_blocking() -> None:
    pub = Publisher("tcp://127.0.0.1:*", "cam0", send_hwm=10)
    sub = _sub(pub.endpoint, hwm=10)
    try:
        assert pub.wait_for_subscribers(1, 5.0)
        t0 = time.monotonic()
        results = [_status(pub, i) for i in range(20_000)]
        assert time.monotonic() - t0 < 30  # it returned at all: sends never blocked
        assert pub.dropped["status"] == results.count(False) > 0
        assert pub.sent["status"] == results.count(True)
        seqs = []
        while sub.poll(200):
            seqs.append(json.loads(sub.recv_multipart()[1])["seq"])
        assert len(seqs) == pub.sent["status"]
        assert seqs[-1] > len(seqs) - 1  # a gap the subscriber can see
    finally:
        sub.close()
        pub.close()


def test_no_subscriber_never_blocks() -> None:
    pub = Publisher("tcp://127.0.0.1:*", "cam0", send_hwm=5)
    try:
        assert all(_status(pub, i) for i in range(1000))  # no subscriber: nothing to overflow
    finally:
        pub.close()


def test_curve_authorised_client_receives_unknown_client_does_not(tmp_path: Path) -> None:
    from zmq.auth import create_certificates

    from eventclip.daemon.config import CurveConfig
    from eventclip.daemon.subscriber import print_stream

    server_dir, clients, others = tmp_path / "server", tmp_path / "clients", tmp_path / "others"
    for d in (server_dir, clients, others):
        d.mkdir()
    server_pub, server_sec = create_certificates(server_dir, "server")
    client_pub, client_sec = create_certificates(clients, "client")
    _, stranger_sec = create_certificates(others, "stranger")
    pub = Publisher("tcp://127.0.0.1:*", "cam0", curve=CurveConfig(server_secret_key=Path(server_sec),
                                                                   authorized_clients=clients))
    try:
        outs = {"client": io.StringIO(), "stranger": io.StringIO()}
        threads = [
            threading.Thread(target=print_stream, args=(pub.endpoint, [""], outs[name], 1),
                             kwargs={"curve": (Path(sec), Path(server_pub)), "timeout_s": 3.0})
            for name, sec in (("client", client_sec), ("stranger", stranger_sec))
        ]
        for t in threads:
            t.start()
        assert pub.wait_for_subscribers(1, 5.0)
        time.sleep(0.3)
        _status(pub, 0)
        for t in threads:
            t.join(5)
        assert '"state":"online"' in outs["client"].getvalue()
        assert outs["stranger"].getvalue() == ""
    finally:
        pub.close()


# ---- sd_notify -----------------------------------------------------------------------------


def test_notify_sends_datagrams_to_the_socket_systemd_names(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    try:
        n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
        assert n.enabled and n.watchdog_usec == 2_000_000
        n.ready("up")
        n.extend_timeout(30_000_000)
        n.watchdog()
        got = [server.recv(4096).decode() for _ in range(3)]
        assert got == ["READY=1\nSTATUS=up", "EXTEND_TIMEOUT_USEC=30000000", "WATCHDOG=1"]
        n.close()
    finally:
        server.close()


def test_notify_abstract_socket_and_foreign_watchdog_pid() -> None:
    name = f"eventclip-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(b"\0" + name.encode())
    server.settimeout(2)
    try:
        n = Notifier(env={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
        assert n.watchdog_usec is None  # meant for another process
        assert n.status("busy\nline")
        assert server.recv(100) == b"STATUS=busy line"
    finally:
        server.close()
    assert not Notifier(env={}).send(READY=1)


# ---- chunk coalescing ahead of the windower ----------------------------------------------------


def test_prometheus_endpoint_serves_the_stats_snapshot() -> None:
    import urllib.request

    from eventclip.daemon.metrics import serve_prometheus

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    snap = {"events_total": 1234, "events_published": 1000, "windows_total": 10, "windows_published": 9,
            "events_per_s": 5.5e6, "max_age_ms": 200.0,
            "drops": {"windows_policy": 1, "windows_stale": 2, "windows_incomplete": 0, "reader_events": 0,
                      "events": {"reader_overflow": 0, "stale_windows": 234}, "socket_hwm": {"labels": 3}},
            "queue_depths": {"windows": 2}, "latency_ms": {"p50": 1.5, "p90": None, "p99": 4.0, "max": 5.0},
            "threads": {"cores": 2, "decode": 1, "encoder": 1, "interop": 1, "numba": 1}}
    stop = serve_prometheus(port, "127.0.0.1", lambda: snap)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        stop()
    assert "eventclipd_events_total 1234.0" in text
    assert 'eventclipd_socket_dropped_total{topic="labels"} 3.0' in text
    assert 'eventclipd_queue_depth{queue="windows"} 2.0' in text
    assert 'eventclipd_latency_ms{quantile="p99"} 4.0' in text and 'quantile="p90"' not in text
    assert 'eventclipd_windows_dropped_total{reason="stale"} 2.0' in text
    assert 'eventclipd_events_dropped_total{reason="stale_windows"} 234.0' in text
    assert "eventclipd_freshness_budget_ms 200.0" in text and 'eventclipd_threads{pool="encoder"} 1.0' in text


def test_sensor_outages_are_forwarded_on_status_once_the_stream_runs() -> None:
    from eventclip.daemon.main import SensorStatus

    pub = Publisher("tcp://127.0.0.1:*", "cam0")
    sub = _sub(pub.endpoint, "eventclip/status")
    try:
        assert pub.wait_for_subscribers(1, 5.0)
        cb = SensorStatus(pub)
        for state, detail in [("online", "opened"), ("reconnecting", "usb unplugged"), ("online", "back"),
                              ("offline", "closed")]:
            cb(state, detail)
        got = []
        while sub.poll(300):
            msg = json.loads(sub.recv_multipart()[1])
            got.append((msg["state"], msg["detail"]))
        # start and stop belong to the pipeline; the outage and the recovery come from the sensor
        assert got == [("reconnecting", "sensor: usb unplugged"), ("online", "sensor: back")]
    finally:
        sub.close()
        pub.close()


# ---- systemd unit -----------------------------------------------------------------------------


def test_systemd_unit_verifies_and_is_a_notify_service_with_watchdog(tmp_path: Path) -> None:
    import shutil
    import subprocess

    unit = (Path(__file__).parents[1] / "systemd" / "eventclipd.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                 "DeviceAllow=char-usb_device rw"):
        assert line in unit
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # the unit as installed points at /opt/eventclip/venv; check everything else against a real binary
    copy = tmp_path / "eventclipd.service"
    copy.write_text(unit.replace("/opt/eventclip/venv/bin/eventclipd", shutil.which("true") or "/bin/true"))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_example_config_file_is_valid() -> None:
    cfg = load_config(Path(__file__).parents[1] / "systemd" / "eventclipd.yaml", {})
    assert cfg.source.kind == "prophesee" and cfg.publish == "tcp://127.0.0.1:5556" and cfg.log_format == "json"


def test_listen_command_prints_messages_and_reports_gaps() -> None:
    import subprocess
    import sys

    pub = Publisher("tcp://127.0.0.1:*", "cam0")
    proc = subprocess.Popen([sys.executable, "-m", "eventclip.cli", "listen", pub.endpoint,
                             "--topic", "eventclip/status", "--pretty"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert pub.wait_for_subscribers(1, 30.0)
        _status(pub, 0)
        pub._seq["status"] += 3  # as if three messages were lost on the way
        _status(pub, 4)
        pub.send("status", state="offline", detail="bye")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        pub.close()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["status: online n0", "# eventclip/status: 3 message(s) lost before seq 4",
                                "status: online n4", "status: offline bye"]


@pytest.mark.parametrize("endpoint", ["not-an-endpoint", "tcp://127.0.0.1", "bogus://x:1"])
def test_listen_to_a_malformed_endpoint_is_a_usage_error_not_a_traceback(endpoint: str, capsys) -> None:
    from eventclip.cli import main

    assert main(["listen", endpoint, "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert f"cannot connect to {endpoint!r}" in err and "tcp://127.0.0.1:5556" in err and "Traceback" not in err


@pytest.mark.parametrize(("addr", "ok"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
                                          ("::", False), ("192.168.1.5", False)])
def test_metrics_address_has_the_same_loopback_guard_as_publish(addr: str, ok: bool) -> None:
    fields = {"source": {"kind": "prophesee"}, "prompts": "p.yaml", "metrics_port": 9108, "metrics_addr": addr}
    if ok:
        load_config(None, fields)
        return
    with pytest.raises(ConfigError, match="metrics_addr .* is not loopback; set allow_remote"):
        load_config(None, fields)
    load_config(None, {**fields, "allow_remote": True})
