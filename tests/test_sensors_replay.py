"""The ``replay`` source: pacing against an injected clock (no real sleeping), slicing, loop, offsets."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from eventclip.errors import ConfigError
from eventclip.events import Geometry, make_events
from eventclip.io import read_events, write_events
from eventclip.sensors import create
from eventclip.sensors.replay import ReplayConfig, ReplaySource, slice_by_time

from .conftest import recording

GEOMETRY = Geometry(64, 48)


class FakeClock:
    """A monotonic clock that only moves when slept on, or by ``work_s`` per reading (downstream work)."""

    def __init__(self, work_s: float = 0.0) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self.work_s = work_s

    def clock(self) -> float:
        self.now += self.work_s
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept += seconds
        self.now += seconds


@pytest.fixture(scope="module")
def ten_seconds(tmp_path_factory) -> Path:
    """A 10-second recording: events from t=5 s to t=15 s (sensor µs), with a silent second in the middle."""
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(5_000_000, 15_000_000, 20_000))
    t = t[(t < 9_000_000) | (t >= 10_000_000)]
    t[0], t[-1] = 5_000_000, 14_999_999
    ev = make_events(rng.integers(0, 64, len(t)), rng.integers(0, 48, len(t)), rng.integers(0, 2, len(t)), t)
    path = tmp_path_factory.mktemp("replay") / "ten_seconds.aedat4"
    write_events(path, ev, GEOMETRY)
    return path


def replay(path: Path, fake: FakeClock, **cfg) -> tuple[list, float]:
    src = ReplaySource(ReplayConfig(path=path, **cfg), clock=fake.clock, sleep=fake.sleep)
    src.open()
    start = fake.clock()
    chunks = list(src)
    return chunks, fake.now - start


@pytest.mark.parametrize("work_s", [0.0, 0.0004])
def test_ten_second_recording_replays_in_ten_seconds_without_drift(ten_seconds: Path, work_s: float) -> None:
    fake = FakeClock(work_s)
    chunks, elapsed = replay(ten_seconds, fake, chunk_us=1000)
    # 10,000 chunks x 0.4 ms of downstream work would add 4 s if pacing slept per chunk.
    assert elapsed == pytest.approx(10.0, rel=0.01)
    assert fake.slept > 0


def test_speed_factor_scales_wall_time(ten_seconds: Path) -> None:
    _, elapsed = replay(ten_seconds, FakeClock(), speed=4.0, chunk_us=5000)
    assert elapsed == pytest.approx(2.5, rel=0.01)


def test_as_fast_as_possible_never_sleeps(ten_seconds: Path) -> None:
    fake = FakeClock()
    chunks, _ = replay(ten_seconds, fake, realtime=False, chunk_us=10_000)
    assert fake.slept == 0.0
    assert sum(len(c) for c in chunks) == len(read_events(ten_seconds).events)


def test_chunks_are_time_slices_holding_every_event_once(ten_seconds: Path) -> None:
    chunks, _ = replay(ten_seconds, FakeClock(), realtime=False, chunk_us=2000)
    ref = read_events(ten_seconds).events
    got = np.concatenate([c.events for c in chunks])
    np.testing.assert_array_equal(got, ref)
    ends = np.array([c.t_end_us for c in chunks])
    np.testing.assert_array_equal(np.diff(ends), 2000)  # contiguous, silent spans included
    assert ends[0] == 5_002_000 and ends[-1] == 15_000_000
    for c in chunks:
        assert np.all((c.events["t"] >= c.t_end_us - 2000) & (c.events["t"] < c.t_end_us))
    silent = [c for c in chunks if 9_000_000 < c.t_end_us <= 10_000_000]
    assert len(silent) == 500 and all(len(c) == 0 for c in silent)


def test_start_stop_offsets_and_loop_report_gaps(ten_seconds: Path) -> None:
    src = ReplaySource(
        ReplayConfig(path=ten_seconds, realtime=False, loop=True, start_offset_us=1_000_000, stop_offset_us=2_000_000,
                     chunk_us=10_000)
    )
    src.open()
    out = []
    for chunk in src:
        out.append(chunk)
        if sum(1 for c in out if c.meta.get("gap")) == 3:
            src.close()
    ref = read_events(ten_seconds).events
    ref = ref[(ref["t"] >= 6_000_000) & (ref["t"] < 7_000_000)]
    gaps = [c for c in out if c.meta.get("gap")]
    assert [g.meta["loop"] for g in gaps] == [1, 2, 3]
    assert [g.meta["t_start_us"] for g in gaps] == [7_000_000, 8_000_000, 9_000_000]
    passes, current = [], []
    for c in out:
        if c.meta.get("gap"):
            passes.append(np.concatenate(current))
            current = []
        else:
            current.append(c.events)
    assert len(passes) == 3
    for k, events in enumerate(passes):
        np.testing.assert_array_equal(events["t"] - k * 1_000_000, ref["t"])
        np.testing.assert_array_equal(events["x"], ref["x"])
    all_t = np.concatenate(passes)["t"]
    assert np.all(np.diff(all_t) >= 0)


def test_loop_pacing_continues_across_passes(ten_seconds: Path) -> None:
    fake = FakeClock()
    src = ReplaySource(
        ReplayConfig(path=ten_seconds, loop=True, stop_offset_us=1_000_000, chunk_us=10_000),
        clock=fake.clock,
        sleep=fake.sleep,
    )
    src.open()
    start = fake.clock()
    loops = 0
    for chunk in src:
        if chunk.meta.get("gap"):
            loops += 1
            if loops == 5:
                src.close()
    assert fake.now - start == pytest.approx(5.0, rel=0.01)


def test_close_from_another_thread_wakes_a_pacing_sleep(ten_seconds: Path) -> None:
    src = create({"kind": "replay", "path": str(ten_seconds), "speed": 0.001, "chunk_us": 1_000_000})
    src.open()
    timer = threading.Timer(0.2, src.close)
    timer.start()
    t0 = time.monotonic()
    chunks = list(src)
    assert time.monotonic() - t0 < 5.0  # the first chunk alone would take 1000 s at this speed
    assert chunks == []


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    src = create({"kind": "replay", "path": str(tmp_path / "nope.raw")})
    with pytest.raises(ConfigError, match="nope.raw"):
        src.open()


def test_real_recording_replays_exactly_what_dv_processing_decodes() -> None:
    dv = pytest.importorskip("dv_processing")
    path = recording("inivation_dvxplorer_320x240.aedat4")
    rec = dv.io.MonoCameraRecording(str(path))
    ref = []
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is not None:
            ref.append(batch.numpy().copy())
    ref = np.concatenate(ref)
    src = create({"kind": "replay", "path": str(path), "realtime": False, "chunk_us": 5000})
    with src:
        assert (src.geometry.width, src.geometry.height) == (320, 240)
        got = np.concatenate([c.events for c in src])
    np.testing.assert_array_equal(got["t"], ref["timestamp"])
    np.testing.assert_array_equal(got["x"], ref["x"])
    np.testing.assert_array_equal(got["y"], ref["y"])
    np.testing.assert_array_equal(got["p"], ref["polarity"])


def test_slice_by_time_keeps_out_of_order_events() -> None:
    t = np.array([100, 250, 120, 260, 900])
    ev = make_events(np.zeros(5), np.zeros(5), np.ones(5), t)
    windows = list(slice_by_time(iter([ev[:3], ev[3:]]), 0, 200))
    assert [(a, b, list(e["t"])) for a, b, e in windows] == [
        (0, 200, [100]),
        (200, 400, [250, 120, 260]),
        (400, 600, []),
        (600, 800, []),
        (800, 1000, [900]),
    ]


def test_real_prophesee_raw_replays_exactly_what_faery_decodes() -> None:
    faery = pytest.importorskip("faery")
    path = recording("prophesee_evt2_sparklers_gen3_640x480.raw")
    ref = np.concatenate(list(faery.events_stream_from_file(path)))
    fake = FakeClock()
    src = ReplaySource(ReplayConfig(path=path, chunk_us=1000), clock=fake.clock, sleep=fake.sleep)
    src.open()
    start = fake.clock()
    assert (src.geometry.width, src.geometry.height) == (640, 480)
    chunks = list(src)
    got = np.concatenate([c.events for c in chunks])
    for name, theirs in (("t", "t"), ("x", "x"), ("y", "y"), ("p", "on")):
        np.testing.assert_array_equal(got[name], ref[theirs].astype(got[name].dtype))
    span_s = (chunks[-1].t_end_us - int(ref["t"][0])) / 1e6
    assert fake.now - start == pytest.approx(span_s, rel=0.01)  # ~96 ms recording, paced in ~96 ms
