"""The ``inivation`` source against real dv-processing network streams on loopback (TCP and UNIX).

A real ``dv.io.NetworkWriter`` streams a real AEDAT4 recording (read with dv-processing's own
reader; generated events when the recording is absent) and every event must arrive unchanged.

The writer runs in a child process that the test kills at the end: in dv-processing 2.0.4 a
NetworkWriter can hang when destroyed (with or without a connected client), so it is never
destroyed inside the test process. The reconnect test kills that process mid-stream and starts a
new one on the same port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from eventclip.sensors import create
from eventclip.sensors.errors import DeviceNotFoundError, SensorError

from .conftest import RECORDINGS

dv = pytest.importorskip("dv_processing")

DVX = RECORDINGS / "inivation_dvxplorer_320x240.aedat4"

WRITER = """
import sys, time
import numpy as np
import dv_processing as dv
where, source = sys.argv[1], sys.argv[2]
if source.endswith(".aedat4"):
    rec = dv.io.MonoCameraRecording(source)
    name, resolution, stores = rec.getCameraName(), rec.getEventResolution(), []
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is not None:
            stores.append(batch)
else:
    name, resolution = "generated", (64, 48)
    ev = np.load(source)
    store = dv.EventStore()
    for t, x, y, p in zip(ev["timestamp"].tolist(), ev["x"].tolist(), ev["y"].tolist(), ev["polarity"].tolist()):
        store.push_back(t, x, y, bool(p))
    stores = [store]
stream = dv.io.Stream.EventStream(0, "events", name, resolution)
if where.startswith("tcp:"):
    writer = dv.io.NetworkWriter("127.0.0.1", int(where[4:]), stream)
else:
    writer = dv.io.NetworkWriter(where[5:], stream)
print("ready", flush=True)
while writer.getClientCount() < 1:
    time.sleep(0.005)
for store in stores:
    writer.writeEvents(store)
time.sleep(120)
"""

DV_DTYPE = np.dtype([("timestamp", "<i8"), ("x", "<i2"), ("y", "<i2"), ("polarity", "i1")])


def generated(n: int, t0: int) -> np.ndarray:
    ev = np.zeros(n, dtype=DV_DTYPE)
    ev["timestamp"] = t0 + 10 * np.arange(n)
    ev["x"] = np.arange(n) % 64
    ev["y"] = np.arange(n) % 48
    ev["polarity"] = np.arange(n) % 2
    return ev


def reference(tmp_path: Path) -> tuple[str, np.ndarray]:
    """(source argument for the writer, the events it will send) — the real recording when present."""
    if DVX.is_file():
        rec = dv.io.MonoCameraRecording(str(DVX))
        batches = []
        while rec.isRunning():
            batch = rec.getNextEventBatch()
            if batch is not None:
                batches.append(batch.numpy().copy())
        return str(DVX), np.concatenate(batches)
    ev = generated(5000, 1_700_000_000_000_000)
    np.save(tmp_path / "events.npy", ev)
    return str(tmp_path / "events.npy"), ev


class Writer:
    """A NetworkWriter in a child process; killed (never destroyed) when done."""

    def __init__(self, tmp_path: Path, where: str, source: str) -> None:
        script = tmp_path / "writer.py"
        script.write_text(WRITER)
        self.proc = subprocess.Popen([sys.executable, str(script), where, source], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", f"writer did not start: {line!r}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def take(it, n_events: int, src, timeout_s: float = 30.0) -> list:
    """Chunks from ``it`` until ``n_events`` events arrived; a watchdog closes ``src`` so a bug cannot hang."""
    watchdog = threading.Timer(timeout_s, src.close)
    watchdog.start()
    chunks, n = [], 0
    try:
        for chunk in it:
            chunks.append(chunk)
            n += len(chunk)
            if n >= n_events:
                break
    finally:
        watchdog.cancel()
    return chunks


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_network_stream_delivers_every_event_unchanged(tmp_path: Path, transport: str) -> None:
    source, ref = reference(tmp_path)
    if transport == "tcp":
        port = free_port()
        where, cfg = f"tcp:{port}", {"kind": "inivation", "host": "127.0.0.1", "port": port}
    else:
        path = Path(tempfile.mkdtemp(prefix="ecdv")) / "dv.sock"  # short: AF_UNIX paths are limited to ~108 bytes
        where, cfg = f"unix:{path}", {"kind": "inivation", "socket_path": str(path)}
    writer = Writer(tmp_path, where, source)
    states: list[str] = []
    src = create(cfg, on_status=lambda state, detail: states.append(state))
    try:
        src.open()
        chunks = take(iter(src), len(ref), src)
    finally:
        src.close()
        writer.kill()
        if transport == "unix":
            shutil.rmtree(path.parent, ignore_errors=True)
    assert src.geometry is not None and src.geometry.width == (320 if DVX.is_file() else 64)
    got = np.concatenate([c.events for c in chunks])
    assert len(got) == len(ref)
    np.testing.assert_array_equal(got["t"], ref["timestamp"])
    np.testing.assert_array_equal(got["x"], ref["x"])
    np.testing.assert_array_equal(got["y"], ref["y"])
    np.testing.assert_array_equal(got["p"], ref["polarity"])
    assert states[0] == "online"
    assert not any(c.meta.get("gap") for c in chunks)


def test_network_reconnects_after_the_server_dies_and_records_the_gap(tmp_path: Path) -> None:
    port = free_port()
    np.save(tmp_path / "a.npy", generated(300, 1000))
    np.save(tmp_path / "b.npy", generated(200, 5_000_000))
    first = Writer(tmp_path, f"tcp:{port}", str(tmp_path / "a.npy"))
    states: list[tuple[str, str]] = []
    cfg = {"kind": "inivation", "host": "127.0.0.1", "port": port, "reconnect": {"initial_s": 0.05, "max_s": 0.4}}
    src = create(cfg, on_status=lambda state, detail: states.append((state, detail)))
    second = None
    try:
        src.open()
        it = iter(src)
        before = take(it, 300, src)
        first.kill()
        second = Writer(tmp_path, f"tcp:{port}", str(tmp_path / "b.npy"))
        after = take(it, 200, src)
    finally:
        src.close()
        for writer in (first, second):
            if writer is not None:
                writer.kill()
    assert sum(len(c) for c in before) == 300
    gaps = [c for c in after if c.meta.get("gap")]
    assert len(gaps) == 1
    gap = gaps[0].meta
    assert gap["t_start_us"] == 1000 + 10 * 299 + 1
    assert gap["t_end_us"] == 5_000_000  # dv timestamps are wall-clock µs: no rebase after a gap
    assert gap["attempts"] >= 1
    events = np.concatenate([c.events for c in after if not c.meta.get("gap")])
    np.testing.assert_array_equal(events["t"], 5_000_000 + 10 * np.arange(200))
    seen = [s for s, _ in states]
    assert seen[0] == "online" and "offline" in seen and "reconnecting" in seen and seen[-1] == "online"


def test_unreachable_stream_says_what_to_check() -> None:
    src = create({"kind": "inivation", "host": "127.0.0.1", "port": free_port()})
    with pytest.raises(SensorError, match="is the DV output module running"):
        src.open()


def test_wrong_serial_lists_the_serials_found() -> None:
    src = create({"kind": "inivation", "serial": "DXA00000"})
    with pytest.raises(DeviceNotFoundError) as info:
        src.open()
    assert "DXA00000" in str(info.value) and "serials found" in str(info.value)


def test_config_rejects_mixed_routes() -> None:
    with pytest.raises(ValidationError, match="not both"):
        create({"kind": "inivation", "serial": "X", "host": "127.0.0.1", "port": 7777})


def test_missing_dv_processing_names_the_extra(monkeypatch) -> None:
    from eventclip._optional import MissingDependencyError

    monkeypatch.setitem(sys.modules, "dv_processing", None)  # import now fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'eventclip\[inivation\]'"):
        create({"kind": "inivation", "host": "127.0.0.1", "port": 7777}).open()
