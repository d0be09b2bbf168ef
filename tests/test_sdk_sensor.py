"""The ``prophesee`` source through the REAL Metavision SDK, with recordings in place of a camera.

``Camera.from_file`` (SDK 5) and ``DeviceDiscovery.open_raw_file`` + ``EventsIterator.from_device``
(SDK 4 style) run the same HAL device, decoder, camera and slicer code as a live camera, minus USB, so
the adapter's real iteration, slicing, buffer copies and geometry are checked here. What only a live
camera shows (biases, ROI, triggers, unplugging) stays on the stand-in: tests/test_sensors_prophesee.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from eventclip.errors import ConfigError
from eventclip.io import read_events
from eventclip.sensors import create
from eventclip.sensors.prophesee import PropheseeConfig, PropheseeSource, list_devices
from tests._io_helpers import same_events
from tests._sdk import RAW_RECORDINGS, copy_recording, write_hdf5_with_sdk


def _stream(path: Path, backend: str, slice_us: int = 1000) -> tuple[PropheseeSource, list]:
    src = create({"kind": "prophesee", "path": str(path), "backend": backend, "realtime": False, "slice_us": slice_us})
    src.open()
    return src, list(src)


@pytest.mark.sdk
@pytest.mark.parametrize("backend", ["sdk5", "sdk4"])
@pytest.mark.parametrize("name", RAW_RECORDINGS)
def test_recording_through_each_sdk_route_delivers_exactly_our_decoder_events(tmp_path, name, backend):
    """Same events and absolute times as eventclip.io (the SDK's time shift is off), in slices of slice_us."""
    path = copy_recording(name, tmp_path)
    ours = read_events(path)
    src, chunks = _stream(path, backend)
    assert src.geometry == ours.geometry and src.sensor_id == name and src.clock == "sensor"
    assert not any(c.meta.get("gap") for c in chunks)
    assert same_events(np.concatenate([c.events for c in chunks]), ours.events)
    ends = [c.t_end_us for c in chunks]
    assert ends == sorted(ends) and ends[0] > int(ours.events["t"][0])
    for chunk in chunks:
        if len(chunk.events):
            assert chunk.t_end_us - 1000 <= int(chunk.events["t"][0]) and int(chunk.events["t"][-1]) < chunk.t_end_us


@pytest.mark.sdk
def test_sdk_written_hdf5_through_the_sdk5_camera(tmp_path):
    raw = copy_recording(RAW_RECORDINGS[2], tmp_path)
    write_hdf5_with_sdk(raw, tmp_path / "driving.hdf5")
    src, chunks = _stream(tmp_path / "driving.hdf5", "sdk5")
    assert src.geometry == read_events(raw).geometry
    assert same_events(np.concatenate([c.events for c in chunks]), read_events(raw).events)


@pytest.mark.sdk
@pytest.mark.parametrize("backend", ["sdk5", "sdk4"])
def test_realtime_recording_is_paced_at_recorded_speed(tmp_path, backend):
    """Pacing on an injected clock (no real sleeping, no timing assert): the waits add up to the
    recording's span divided by speed, scheduled from the first slice."""
    path = copy_recording(RAW_RECORDINGS[0], tmp_path)
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    cfg = PropheseeConfig(path=path, backend=backend, speed=2.0)
    src = PropheseeSource(cfg, clock=lambda: now[0], sleep=sleep)
    src.open()
    chunks = list(src)
    span_s = (chunks[-1].t_end_us - chunks[0].t_end_us) / 1e6
    assert span_s > 0.09 and len(waits) >= len(chunks) - 1
    assert sum(waits) == pytest.approx(span_s / 2.0)


@pytest.mark.sdk
def test_no_camera_plugged_in_lists_none_through_the_real_discovery():
    assert [d for d in list_devices() if d["backend"].startswith("sdk")] == []


@pytest.mark.sdk
def test_recordings_the_sdk_camera_cannot_play_are_refused_before_it_sees_them(tmp_path):
    """OpenEB 5.1.1's Camera.from_file crashes the process on a DAT file; SDK 4's open_raw_file reads RAW only."""
    dat = copy_recording("ncars_obj_004397_td.dat", tmp_path)
    with pytest.raises(ConfigError, match=r"plays \.raw, \.hdf5, \.h5 recordings.*kind: replay"):
        create({"kind": "prophesee", "path": str(dat), "backend": "sdk5"}).open()
    hdf5 = tmp_path / "x.hdf5"
    hdf5.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"\(sdk4\) plays \.raw recordings"):
        create({"kind": "prophesee", "path": str(hdf5), "backend": "sdk4"}).open()
    with pytest.raises(ConfigError, match="not a file"):
        create({"kind": "prophesee", "path": str(tmp_path / "missing.raw")}).open()


def test_recording_config_rules():
    """A recording is not a camera: no serial, no settings, no neuromorphic-drivers, and no reconnection."""
    cfg = PropheseeConfig(path="rec.raw")
    assert cfg.reconnect.enabled is False
    for bad, field in [({"serial": "00050423"}, "not both"), ({"backend": "neuromorphic-drivers"}, "Metavision SDK"),
                       ({"settings": {"erc_rate_ev_s": 1000}}, "settings")]:
        with pytest.raises(ValidationError, match=field):
            PropheseeConfig(path="rec.raw", **bad)
