"""eventclipd end to end: real recordings replayed, a real (tiny, random-weight) model exported to ONNX,
real ZeroMQ sockets on loopback, real signals to a real eventclipd process, a real notify socket."""

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

import jsonschema
import numpy as np
import pytest
import zmq

from eventclip.daemon import messages
from eventclip.daemon.config import load_config
from tests.conftest import recording

SPINNER = "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"
SPARKLERS = "prophesee_evt2_sparklers_gen3_640x480.raw"
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}
PROMPTS = """\
classes: [spinner, sparkler, car, pedestrian, digit]
templates: ["an event camera recording of a {}."]
anomaly: {normal: ["an empty street"], abnormal: ["a fire"], threshold: 0.5}
top_k: 3
"""
OTHER_PROMPTS = "classes: [alpha, beta]\ntop_k: 2\n"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight model package with its ONNX export (so daemons start without torch)."""
    from eventclip.exporters.onnx import export_onnx
    from eventclip.model.clip import create_eventclip

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    path = create_eventclip(TINY).save_pretrained(tmp_path_factory.mktemp("pkg") / "tiny")
    export_onnx(path, check=False)
    return path


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(PROMPTS)
    return path


@pytest.fixture(autouse=True)
def _text_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTCLIP_CACHE", str(tmp_path / "cache"))


class Collector:
    """A SUB socket on its own thread that keeps every message until ``offline`` (or a timeout)."""

    def __init__(self, endpoint: str, rcvhwm: int = 100_000, read: bool = True) -> None:
        self.messages: list[tuple[str, dict]] = []
        self.sock = zmq.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt_string(zmq.SUBSCRIBE, "")
        self.sock.connect(endpoint)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        if read:
            self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not self.sock.poll(100):
                continue
            topic, payload = self.sock.recv_multipart()
            msg = messages.decode(payload)
            self.messages.append((topic.decode(), msg))
            if topic.endswith(b"/status") and msg["state"] == "offline":
                break
        self.done.set()

    def topic(self, name: str) -> list[dict]:
        return [m for t, m in self.messages if t.endswith("/" + name)]

    def wait_for(self, pred, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(t, m) for t, m in list(self.messages)):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.sock.close()


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _schema_check(coll: Collector) -> None:
    schemas = messages.json_schemas()
    for topic, msg in coll.messages:
        jsonschema.validate(msg, schemas[f"{topic.rsplit('/', 1)[1]}.v1.json"])


def _assert_gapless(msgs: list[dict]) -> None:
    assert [m["seq"] for m in msgs] == list(range(len(msgs)))


# ---- in-process: the Python API with real files and sockets ------------------------------------


def _engine(package: Path, prompts: Path):
    from eventclip.daemon.engine import ClassifierEngine
    from eventclip.stream import open_encoder

    return ClassifierEngine(package, open_encoder(package, "onnxruntime"), prompts)


def _pipeline(cfg, engine, publisher, **kw):
    from eventclip import sensors
    from eventclip.daemon.pipeline import Pipeline
    from eventclip.frames.windows import make_windower

    source = sensors.create(cfg.source)
    source.open()
    window_us = cfg.window_us or engine.window_us
    return Pipeline(source, make_windower(window_us=window_us), engine, publisher, cfg, **kw)


def test_replay_publishes_one_schema_valid_labels_message_per_window_equal_to_classify(package, prompts):
    from eventclip.daemon.main import run
    from eventclip.heads.classifier import build_classifier
    from eventclip.heads.prompts import load_prompts
    from eventclip.stream import classify_file, open_encoder, open_events

    path = recording(SPINNER)
    endpoint = _free_endpoint()
    cfg = load_config(None, {"sensor": "replay", "input": path, "speed": 0, "prompts": prompts, "model": package,
                             "backend": "onnxruntime", "window_us": 5000, "publish": endpoint,
                             "wait_for_subscribers": 2, "log_format": "text"})
    coll = Collector(endpoint)
    example = subprocess.Popen([sys.executable, str(Path(__file__).parents[1] / "examples" / "subscriber.py"),
                                endpoint], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run(cfg) == 0
        assert coll.done.wait(10)
        example_out, example_err = example.communicate(timeout=30)
    finally:
        coll.close()
        if example.poll() is None:
            example.kill()
    assert example.returncode == 0, example_err
    example_lines = example_out.splitlines()
    assert example_lines[-1].startswith("status: offline") and "lost" not in example_out
    _schema_check(coll)
    labels = coll.topic("labels")
    _assert_gapless(labels)
    _assert_gapless(coll.topic("anomaly"))
    # "starting" goes out as soon as the socket is bound, before a subscriber may have joined
    assert [m["state"] for m in coll.topic("status")] in (["online", "offline"], ["starting", "online", "offline"])

    classifier = build_classifier(package, open_encoder(package, "onnxruntime"), load_prompts(prompts))
    expected = list(classify_file(path, classifier, 5000))
    # The daemon's pipeline run from Python: the stream API's links, stage by stage.
    rep = classifier.representation
    with open_events(path) as events:
        chained = list(events.windows(window_us=5000).frames(rep, batch_size=8).encode(classifier.encoder)
                       .heads(classifier))
    assert len(labels) == len(expected) == len(chained) > 5
    assert sum(" µs " in line for line in example_lines) == len(labels)  # the example saw every window
    for got, want, chain in zip(labels, expected, chained, strict=True):
        assert (got["t_start_us"], got["t_end_us"], got["n_events"]) == (want.t_start_us, want.t_end_us, want.n_events)
        assert (chain.t_start_us, chain.t_end_us, chain.n_events) == (want.t_start_us, want.t_end_us, want.n_events)
        assert [lab["label"] for lab in got["labels"]] == [name for name, _ in want.labels]
        assert [name for name, _ in chain.labels] == [name for name, _ in want.labels]
        np.testing.assert_allclose([lab["score"] for lab in got["labels"]], [p for _, p in want.labels], atol=1e-5)
        np.testing.assert_allclose([p for _, p in chain.labels], [p for _, p in want.labels], atol=1e-5)
        np.testing.assert_allclose([lab["score"] for lab in got["labels"]], [p for _, p in chain.labels], atol=1e-5)
        assert got["anomaly_score"] == pytest.approx(want.anomaly, abs=1e-5) and got["anomaly"] == want.flag
        assert got["anomaly_score"] == pytest.approx(chain.anomaly, abs=1e-5) and got["anomaly"] == chain.flag
    from eventclip.io import read_events

    assert sum(m["n_events"] for m in labels) == len(read_events(path))
    assert coll.topic("stats")[-1]["events_total"] == len(read_events(path))


class _SlowEngine:
    """The real engine with an encoder made slow on purpose (an overloaded accelerator)."""

    def __init__(self, inner, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, x):
        time.sleep(self.delay_s)
        return self.inner.encode(x)


@pytest.mark.parametrize("policy", ["drop_oldest", "keep_every_nth"])
def test_slow_encoder_drops_windows_by_policy_never_events(package, prompts, policy):
    from eventclip.daemon.publish import Publisher
    from eventclip.io import read_events

    path = recording(SPARKLERS)
    cfg = load_config(None, {"sensor": "replay", "input": path, "speed": 1.0, "prompts": prompts,
                             "window_us": 1000, "batch_size": 1, "window_queue": 4, "drop_policy": policy,
                             "keep_every_n": 3, "publish": "tcp://127.0.0.1:*",
                             "max_age_ms": 60_000})  # this test is about the policy, not the freshness budget
    publisher = Publisher(cfg.publish, "test")
    pipe = _pipeline(cfg, _SlowEngine(_engine(package, prompts), 0.02), publisher)
    depths = []
    try:
        pipe.start()
        sampler = threading.Thread(target=lambda: [depths.append(len(pipe.windows)) or time.sleep(0.005)
                                                   for _ in range(400) if not pipe._done.is_set()], daemon=True)
        sampler.start()
        assert pipe.wait() == 0
    finally:
        publisher.close()
    c = pipe.metrics.counters
    n_file = len(read_events(path))
    assert c.events_in == c.events_windowed == n_file and c.events_overflow == 0
    assert c.windows_closed >= 90
    assert pipe.windows.dropped > 0
    assert c.windows_published + pipe.windows.dropped == c.windows_closed
    assert max(depths) <= cfg.window_queue
    assert pipe.last_stats["drops"]["windows_policy"] == pipe.windows.dropped
    dropped = pipe.last_stats["drops"]["events"]
    assert dropped["policy"] > 0 and c.events_published + dropped["policy"] == n_file  # every event accounted for
    assert pipe.last_stats["events_in_flight"] == 0


def test_stalled_subscriber_does_not_stall_the_pipeline_and_drops_are_counted(package, tmp_path):
    from eventclip.daemon.publish import Publisher

    many = tmp_path / "many.yaml"  # 100 labels per message: ~6 kB each, enough to fill loopback buffers
    many.write_text("classes: [" + ", ".join(f"class{i}" for i in range(100)) + "]\ntop_k: 100\n")
    cfg = load_config(None, {"sensor": "replay", "input": recording(SPINNER), "speed": 0, "prompts": many,
                             "window_us": 200, "batch_size": 64, "window_queue": 100_000, "send_hwm": 2,
                             "publish": "tcp://127.0.0.1:*"})
    publisher = Publisher(cfg.publish, "test", send_hwm=cfg.send_hwm)
    stalled = zmq.Context.instance().socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 2)
    stalled.setsockopt(zmq.RCVBUF, 4096)
    stalled.setsockopt_string(zmq.SUBSCRIBE, "")
    stalled.connect(publisher.endpoint)
    try:
        assert publisher.wait_for_subscribers(1, 5)
        pipe = _pipeline(cfg, _engine(package, many), publisher)
        pipe.start()
        assert pipe.wait(timeout=120) == 0  # finished: the subscriber never read, nothing blocked
        c = pipe.metrics.counters
        assert c.windows_published == c.windows_closed > 200
        assert pipe.windows.dropped == 0
        assert publisher.dropped["labels"] > 0
        assert publisher.dropped["labels"] + publisher.sent["labels"] == c.windows_published
        assert pipe.last_stats["drops"]["socket_hwm"]["labels"] == publisher.dropped["labels"]
    finally:
        stalled.close()
        publisher.close()


def test_wedged_stage_stops_watchdog_keepalives(package, prompts, tmp_path):
    from eventclip.daemon.notify import Notifier
    from eventclip.daemon.publish import Publisher

    sock_path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(sock_path)
    server.settimeout(0.1)
    release = threading.Event()

    class Wedged(_SlowEngine):
        def encode(self, x):
            if self.delay_s:
                release.wait(30)
            return self.inner.encode(x)

    cfg = load_config(None, {"source": {"kind": "replay", "path": recording(SPINNER), "speed": 1.0, "loop": True},
                             "prompts": prompts, "window_us": 5000, "publish": "tcp://127.0.0.1:*"})
    publisher = Publisher(cfg.publish, "test")
    notifier = Notifier(env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "600000"})
    engine = Wedged(_engine(package, prompts), 0)
    pipe = _pipeline(cfg, engine, publisher, notifier=notifier)

    def datagrams(seconds: float) -> list[bytes]:
        out, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                out.append(server.recv(4096))
            except TimeoutError:
                pass
        return out

    def drain() -> None:
        server.setblocking(False)
        try:
            while True:
                server.recv(4096)
        except BlockingIOError:
            pass
        finally:
            server.settimeout(0.1)

    try:
        pipe.start()
        assert b"WATCHDOG=1" in datagrams(3.0)  # healthy: keep-alives every 0.3 s
        engine.delay_s = 1  # the encoder now hangs on its next batch
        deadline = time.monotonic() + 10
        while pipe.healthy() and time.monotonic() < deadline:  # busy > stall limit (0.6 s)
            time.sleep(0.05)
        assert not pipe.healthy()
        drain()  # keep-alives sent before the stall was detected
        assert b"WATCHDOG=1" not in datagrams(1.0)
        release.set()
        engine.delay_s = 0
        time.sleep(0.3)
        assert b"WATCHDOG=1" in datagrams(3.0)  # recovered
    finally:
        release.set()
        pipe.request_stop()
        assert pipe.wait() == 0
        publisher.close()
        server.close()


# ---- the eventclipd process: signals, exit statuses, notify socket ------------------------------


def _daemon(args: list[str], env_extra: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "eventclip.daemon.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_process_ready_watchdog_sighup_and_sigterm(package, prompts, tmp_path):
    sock_path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(sock_path)
    server.settimeout(60)
    endpoint = _free_endpoint()
    config = tmp_path / "loop.yaml"
    config.write_text("source: {kind: replay, loop: true}\nlog_format: json\n")
    coll = Collector(endpoint)
    proc = _daemon(
        ["--config", str(config), "--sensor", "replay", "--input", str(recording(SPINNER)), "--prompts", str(prompts),
         "--model", str(package), "--backend", "onnxruntime", "--publish", endpoint, "--window-us", "5000",
         "--wait-for-subscribers", "1"],
        {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "1000000", "EVENTCLIP_CACHE": str(tmp_path / "cache")},
    )
    try:
        seen: list[str] = []
        while not any(s.startswith("READY=1") for s in seen):
            seen.append(server.recv(4096).decode())
        assert coll.wait_for(lambda t, m: t.endswith("/labels")), "no labels after READY"
        server.settimeout(0.1)
        keepalives, end = [], time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                keepalives.append(server.recv(4096).decode())
            except TimeoutError:
                pass
        assert keepalives.count("WATCHDOG=1") >= 2  # every WATCHDOG_USEC / 2
        # SIGHUP with a broken file: rejected, old classes stay
        prompts.write_text("classes: []\n")
        proc.send_signal(signal.SIGHUP)
        assert coll.wait_for(lambda t, m: t.endswith("/status") and "rejected" in m["detail"])
        n_before = len(coll.topic("labels"))
        assert coll.wait_for(lambda t, m: t.endswith("/labels") and m["seq"] > n_before + 1)
        assert {lab["label"] for lab in coll.topic("labels")[-1]["labels"]} <= {"spinner", "sparkler", "car",
                                                                              "pedestrian", "digit"}
        # SIGHUP with a good file: new classes, same stream (seq keeps counting)
        prompts.write_text(OTHER_PROMPTS)
        proc.send_signal(signal.SIGHUP)
        assert coll.wait_for(lambda t, m: t.endswith("/status") and "reloaded" in m["detail"])
        assert coll.wait_for(lambda t, m: t.endswith("/labels") and m["labels"][0]["label"] in ("alpha", "beta"))
        # SIGTERM mid-stream: offline, exit 0 within 5 s
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, proc.stderr.read()
        assert time.monotonic() - t0 < 5
        assert coll.done.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
        coll.close()
        server.close()
    assert coll.topic("status")[-1]["state"] == "offline"
    _assert_gapless(coll.topic("labels"))
    _schema_check(coll)


def test_bad_config_exits_2_naming_the_field(tmp_path, prompts):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"source: {{kind: replay, path: x.raw}}\nprompts: {prompts}\nbatch_size: 0\n"
                   "drop_policy: sometimes\n")
    proc = _daemon(["--config", str(cfg)])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "batch_size" in err and "drop_policy" in err and str(cfg) in err
    proc = _daemon(["--sensor", "replay", "--prompts", str(prompts), "--publish", "tcp://0.0.0.0:5556",
                    "--input", "x.raw"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "allow_remote" in err


def test_corrupt_input_mid_stream_reports_error_and_exits_nonzero(package, prompts, tmp_path):
    bad = tmp_path / "cut.raw"
    shutil.copyfile(recording(SPINNER), bad)
    with bad.open("ab") as fh:
        fh.write(b"\x00\x01")  # the file ends in the middle of an EVT 2.0 word
    endpoint = _free_endpoint()
    coll = Collector(endpoint)
    proc = _daemon(["--sensor", "replay", "--input", str(bad), "--prompts", str(prompts), "--model", str(package),
                    "--backend", "onnxruntime", "--publish", endpoint, "--window-us", "5000", "--speed", "0",
                    "--wait-for-subscribers", "1"], {"EVENTCLIP_CACHE": str(tmp_path / "cache")})
    try:
        _, err = proc.communicate(timeout=120)
        assert coll.done.wait(10)
    finally:
        coll.close()
    assert proc.returncode == 1, err
    states = [(m["state"], m["detail"]) for m in coll.topic("status")]
    assert [s for s, _ in states if s != "starting"][0] == "online" and states[-1][0] == "offline"
    errors = [d for s, d in states if s == "error"]
    assert errors and str(bad) in errors[0] and "byte" in errors[0]
    assert len(coll.topic("labels")) > 0  # windows before the cut were published


def test_demo_replays_the_bundled_sample_and_prints_labels(package, tmp_path, monkeypatch, capsys):
    import eventclip.data as data
    from eventclip.daemon.main import main
    from eventclip.io import read_events, write_events

    events = read_events(recording(SPINNER)).events[:20000]
    sample = tmp_path / "sample.raw"
    write_events(sample, events, (640, 480))
    (tmp_path / "prompts.yaml").write_text(json.dumps({"classes": ["spinning disk"], "top_k": 3}))
    monkeypatch.setattr(data, "default_model_path", lambda: package)
    monkeypatch.setattr(data, "sample_recording_path", lambda: sample)
    monkeypatch.setattr(data, "default_prompts_path", lambda: tmp_path / "prompts.yaml")
    t0, t1 = int(events["t"][0]), int(events["t"][-1])
    middle = (t0 + t1) // 2
    labels = tmp_path / "sample.json"  # the sample's ground truth, in the format the bundled sample ships
    labels.write_text(json.dumps({"recording": "sample.raw", "geometry": [640, 480], "duration_us": t1 - t0,
                                  "segments": [{"t_start_us": 0, "t_end_us": middle, "label": "disk",
                                                "text": "spinning disk"},
                                               {"t_start_us": middle, "t_end_us": t1 + 1000, "label": "cat",
                                                "text": "a cat"}]}))
    monkeypatch.setattr(data, "sample_labels_path", lambda: labels)
    assert main(["--demo", "--backend", "onnxruntime", "--speed", "0", "--window-us", "500"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "2 scenes" in out[0] and "spinning disk, a cat" in out[0]  # what the sample shows
    endpoint = out[2].split()[2].rstrip(".")
    assert endpoint.startswith("tcp://127.0.0.1:") and out[3].strip() == f"eventclip listen {endpoint} --pretty"
    assert out[5].split()[:4] == ["time", "events", "true", "label"]  # column headers
    assert out[6].startswith("status: online") and out[-2].startswith("status: offline")
    windows = out[7:-2]
    rows = [(line[22:50].strip(), line[50], line[52:].split("  (")[0]) for line in windows]  # truth, mark, labels
    assert {row[2] for row in rows} == {"spinning disk 1.00"} and len(rows) >= 3
    right = [row for row in rows if row[:2] == ("spinning disk", "✓")]
    assert right and set(rows) - set(right) == {("a cat", " ", "spinning disk 1.00")}  # truth beside the prediction
    assert out[-1] == f"top-1 equals the true label in {len(right)} of {len(windows)} labelled windows"


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_torch_frames_path_gives_the_numpy_path_labels(package, prompts, backend):
    """The device-tensor path (used on CUDA) checked on the CPU against the numpy/numba path."""
    from eventclip.daemon.engine import ClassifierEngine
    from eventclip.frames.windows import iter_windows
    from eventclip.io import open_events
    from eventclip.stream import open_encoder

    encoder = open_encoder(package, backend)
    numpy_path = ClassifierEngine(package, encoder, prompts, frames="numpy")
    torch_path = ClassifierEngine(package, encoder, prompts, frames="torch")
    assert numpy_path.frames_device is None and torch_path.frames_device == "cpu"
    stream = open_events(recording(SPINNER), delta_t_us=5000)
    windows = list(iter_windows(stream, "delta_t", window_us=5000))[:6]
    got, want = ([e.classify(windows, e.encode(e.model_input(windows, stream.geometry))) for e in (torch_path,
                                                                                                 numpy_path)])
    assert [r.labels[0][0] for r in got] == [r.labels[0][0] for r in want]
    np.testing.assert_allclose([p for r in got for _, p in r.labels], [p for r in want for _, p in r.labels],
                               atol=1e-4)


def test_a_looping_replay_logs_its_first_loop_and_counts_the_others(package, prompts, caplog):
    """A looping replay used to log an INFO 'discontinuity' line on every pass (~37k lines an hour)."""
    import logging

    from eventclip.daemon.publish import Publisher

    cfg = load_config(None, {"source": {"kind": "replay", "path": recording(SPINNER), "realtime": False, "loop": True},
                             "prompts": prompts, "window_us": 50_000, "publish": "tcp://127.0.0.1:*"})
    publisher = Publisher(cfg.publish, "test")
    pipe = _pipeline(cfg, _engine(package, prompts), publisher)
    try:
        with caplog.at_level(logging.INFO, logger="eventclip.daemon.pipeline"):
            pipe.start()
            deadline = time.monotonic() + 60
            while pipe.metrics.counters.gaps.get("loop", 0) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            pipe.request_stop()
            assert pipe.wait() == 0
    finally:
        publisher.close()
    loops = pipe.last_stats["gaps"]["loop"]
    assert loops >= 20 and loops == pipe.metrics.counters.gaps["loop"]
    assert sum("discontinuity" in r.getMessage() for r in caplog.records) == 1
