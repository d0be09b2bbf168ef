"""Windows and frames on real sensor recordings, decoded by independent libraries (expelliarmus,
dv-processing), so nothing here depends on eventclip's own readers. Skipped when absent."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from eventclip.events import Geometry, make_events
from eventclip.frames import Representation
from eventclip.frames.accumulate import count_events, count_events_reference, count_events_torch, event_frames
from eventclip.frames.windows import iter_windows

from .conftest import recording


def _expelliarmus(name: str, encoding: str) -> np.ndarray:
    wizard = pytest.importorskip("expelliarmus").Wizard(encoding=encoding)
    a = wizard.read(str(recording(name)))
    return make_events(a["x"], a["y"], a["p"], a["t"])


def _dv(name: str) -> np.ndarray:
    dv = pytest.importorskip("dv_processing")
    rec = dv.io.MonoCameraRecording(str(recording(name)))
    blocks = []
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is None:
            break
        blocks.append(batch.numpy())
    a = np.concatenate(blocks)
    return make_events(a["x"], a["y"], a["polarity"], a["timestamp"])


RECORDINGS = {
    "spinner": (lambda: _expelliarmus("prophesee_evt2_spinner_excerpt_gen3_640x480.raw", "evt2"), Geometry(640, 480)),
    "sparklers": (lambda: _expelliarmus("prophesee_evt2_sparklers_gen3_640x480.raw", "evt2"), Geometry(640, 480)),
    "dvxplorer": (lambda: _dv("inivation_dvxplorer_320x240.aedat4"), Geometry(320, 240)),
    "ncars": (lambda: _expelliarmus("ncars_obj_004397_td.dat", "dat"), Geometry(120, 100)),
}


def _chunks(ev: np.ndarray, seed: int) -> list[np.ndarray]:
    cuts = np.sort(np.random.default_rng(seed).integers(0, len(ev), 25))
    return np.split(ev, cuts)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
@pytest.mark.parametrize("mode, kwargs", [("delta_t", {"window_us": 5_000}), ("n_events", {"n_events": 7_919}),
                                          ("mixed", {"window_us": 5_000, "n_events": 20_000})])
def test_every_event_lands_in_exactly_one_tumbling_window(name, mode, kwargs):
    load, _ = RECORDINGS[name]
    ev = load()
    windows = list(iter_windows(_chunks(ev, 1), mode, **kwargs))
    assert sum(w.n_events for w in windows) == len(ev)
    assert np.array_equal(np.concatenate([w.events for w in windows]), ev)
    for a, b in pairwise(windows):
        assert a.t_end == b.t_start or mode == "n_events"
    if mode == "delta_t":
        for w in windows:
            assert w.n_events == 0 or (w.events["t"].min() >= w.t_start and w.events["t"].max() < w.t_end)


@pytest.mark.parametrize("name", ["spinner", "dvxplorer"])
def test_sliding_windows_on_real_data_match_a_direct_slice(name):
    load, _ = RECORDINGS[name]
    ev = load()
    windows = list(iter_windows(_chunks(ev, 2), "sliding", window_us=10_000, stride_us=2_500))
    t = ev["t"]
    for w in windows[:: max(1, len(windows) // 20)]:
        assert np.array_equal(w.events, ev[(t >= w.t_start) & (t < w.t_end)])
    assert sum(w.n_events for w in windows) == sum(
        int(((t >= w.t_start) & (t < w.t_end)).sum()) for w in windows)


def test_ncars_frames_equal_a_slow_python_reference():
    load, g = RECORDINGS["ncars"]
    ev = load()
    off = [0, len(ev) // 3, len(ev)]
    counts = np.zeros((2, 2, g.height, g.width), np.int64)
    for b in range(2):
        for e in ev[off[b] : off[b + 1]]:
            counts[b, int(e["p"] > 0), e["y"], e["x"]] += 1
    total = counts.sum(1)
    paper = total / (total.max(axis=(1, 2), keepdims=True) + 1)
    np.testing.assert_allclose(event_frames(ev, g, off, variant="paper"), paper, atol=1e-6)
    per = counts / (counts.max(axis=(2, 3), keepdims=True) + 1)
    np.testing.assert_allclose(event_frames(ev, g, off, variant="polarity"), per, atol=1e-6)
    np.testing.assert_allclose(event_frames(ev, g, off, variant="authors"), (per * 2 - 1).mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("name", ["spinner", "sparklers", "dvxplorer"])
def test_backends_agree_on_real_windows(name):
    load, g = RECORDINGS[name]
    ev = load()
    windows = list(iter_windows([ev], "delta_t", window_us=20_000))
    events = np.concatenate([w.events for w in windows])
    off = np.concatenate([[0], np.cumsum([w.n_events for w in windows])])
    want = count_events_reference(events, g, off, per_polarity=True)
    assert np.array_equal(count_events(events, g, off, per_polarity=True), want)
    assert np.array_equal(count_events_torch(events, g, off, per_polarity=True).numpy(), want)
    rep = Representation(clip_percentile=99.0)
    x = rep([w.events for w in windows], g)
    assert x.shape == (len(windows), 3, 224, 224) and np.isfinite(x).all()


def test_frames_cli_on_a_real_recording(tmp_path, capsys):
    from eventclip.cli import main

    path = recording("inivation_dvxplorer_320x240.aedat4")
    pytest.importorskip("eventclip.io.aedat4")
    assert main(["frames", str(path), "--window-us", "100000", "--out", str(tmp_path), "--max-frames", "3"]) == 0
    pngs = sorted(tmp_path.glob("frame_*.png"))
    assert len(pngs) == 3
    from PIL import Image

    first = np.asarray(Image.open(pngs[0]))
    assert first.shape == (240, 320) and first.max() > 0
    ev = _dv("inivation_dvxplorer_320x240.aedat4")
    t0 = int(ev["t"][0]) // 100_000 * 100_000
    window = ev[(ev["t"] >= t0) & (ev["t"] < t0 + 100_000)]
    want = np.rint(event_frames(window, Geometry(320, 240))[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(first, want)
