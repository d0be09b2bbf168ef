"""Counting on the model's grid: the per-axis tables (letterbox, crop, stretch, ROI), numba == numpy
== torch(CPU) == a slow per-event reference, pieces and batches, hot-pixel mask and clipping, and
what it buys on a real large-sensor recording (a frame with contrast instead of a blank one)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eventclip.events import Geometry, make_events
from eventclip.frames.accumulate import (
    count_events,
    count_events_reference,
    count_events_torch,
    event_frames,
    event_frames_torch,
    stack_windows,
)
from eventclip.frames.errors import EventOutsideGeometryError, FramesError
from eventclip.frames.grid import model_grid
from eventclip.frames.preprocess import Representation

GEOM = Geometry(37, 23)


def _random_events(n: int, seed: int = 0, geometry: Geometry = GEOM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, geometry.width, n), rng.integers(0, geometry.height, n),
                       rng.choice([0, 1, -1], n), np.sort(rng.integers(0, 1_000_000, n)))


def _slow_grid_counts(events, geometry, offsets, size, fit, roi, per_polarity):
    """Per event, straight from the definition: rescale (x, y) in float32, floor, then count."""
    x0, y0, w, h = roi or (0, 0, geometry.width, geometry.height)
    out = np.zeros((len(offsets) - 1, 2, size, size), np.int64)
    for b in range(len(offsets) - 1):
        for e in events[offsets[b]:offsets[b + 1]]:
            x, y = int(e["x"]), int(e["y"])
            if not (x0 <= x < x0 + w and y0 <= y < y0 + h):
                continue
            if fit == "stretch":
                gx = math.floor(np.float32(x - x0) * np.float32(size / w))
                gy = math.floor(np.float32(y - y0) * np.float32(size / h))
            elif fit == "letterbox":
                s = size / max(w, h)
                nw, nh = max(1, round(w * s)), max(1, round(h * s))
                gx = min(math.floor(np.float32(x - x0) * np.float32(s)), nw - 1) + (size - nw) // 2
                gy = min(math.floor(np.float32(y - y0) * np.float32(s)), nh - 1) + (size - nh) // 2
            else:
                side = min(w, h)
                cx, cy = x0 + (w - side) / 2, y0 + (h - side) / 2
                if not (cx <= x < cx + side and cy <= y < cy + side):
                    continue
                gx = min(math.floor(np.float32(x - cx) * np.float32(size / side)), size - 1)
                gy = min(math.floor(np.float32(y - cy) * np.float32(size / side)), size - 1)
            out[b, 1 if e["p"] > 0 else 0, gy, gx] += 1
    return out if per_polarity else out.sum(axis=1)


@pytest.mark.parametrize("fit", ["letterbox", "crop", "stretch"])
@pytest.mark.parametrize("roi", [None, (3, 2, 30, 17)])
@pytest.mark.parametrize("per_polarity", [False, True])
def test_grid_counts_equal_the_slow_reference_on_every_backend(fit, roi, per_polarity):
    ev = _random_events(2500, seed=1)
    offsets = [0, 900, 900, 2500]  # includes an empty window
    grid = model_grid(GEOM, 11, fit, roi)
    want = _slow_grid_counts(ev, GEOM, offsets, 11, fit, roi, per_polarity)
    got = [
        count_events_reference(ev, GEOM, offsets, per_polarity=per_polarity, grid=grid),
        count_events(ev, GEOM, offsets, per_polarity=per_polarity, grid=grid),
        count_events_torch(ev, GEOM, offsets, per_polarity=per_polarity, grid=grid).numpy(),
    ]
    for counts in got:
        assert counts.shape == want.shape
        np.testing.assert_array_equal(counts, want)
    # Windows given as pieces of a stream are counted in place, equal to the joined windows.
    pieces, off = stack_windows([[ev[:400], ev[400:900]], ev[900:900], [ev[900:1700], ev[1700:]]])
    np.testing.assert_array_equal(count_events(pieces, GEOM, off, per_polarity=per_polarity, grid=grid), want)


def test_tables_place_sensor_edges_on_grid_edges():
    g = model_grid(Geometry(1280, 720), 64)  # letterbox: 64 x 36 image, bars of 14 rows
    assert g.x_map[0] == 0 and g.x_map[-1] == 63 and np.bincount(g.x_map).tolist() == [20] * 64
    assert g.y_map[0] == 14 and g.y_map[-1] == 49
    s = model_grid(Geometry(640, 480), 224, "stretch")
    assert s.x_map[-1] == 223 and s.y_map[-1] == 223 and (s.x_map >= 0).all()
    c = model_grid(Geometry(346, 260), 64, "crop")
    assert (c.x_map >= 0).sum() == 260 and c.x_map[43] == 0 and c.x_map[42] == -1
    r = model_grid(Geometry(100, 80), 10, "stretch", (10, 20, 50, 40))
    assert (r.x_map[:10] == -1).all() and r.x_map[10] == 0 and r.x_map[59] == 9 and r.x_map[60] == -1
    same = model_grid(Geometry(64, 64), 64)
    np.testing.assert_array_equal(same.x_map, np.arange(64))
    with pytest.raises(FramesError, match="roi"):
        model_grid(GEOM, 8, "letterbox", (30, 0, 20, 5))


def test_events_outside_the_sensor_are_reported_on_the_grid():
    ev = _random_events(300, seed=2)
    ev["x"][120] = GEOM.width
    grid = model_grid(GEOM, 8)
    for count in (count_events, count_events_reference):
        with pytest.raises(EventOutsideGeometryError) as info:
            count(ev, GEOM, grid=grid)
        assert info.value.index == 120
    with pytest.raises(EventOutsideGeometryError):
        count_events_torch(ev, GEOM, grid=grid)
    with pytest.raises(FramesError, match="made for a 37x23 sensor"):
        count_events(ev[:100], Geometry(40, 23), grid=grid)


@pytest.mark.parametrize("variant", ["paper", "authors", "polarity"])
def test_grid_frames_agree_across_backends_with_mask_and_clipping(variant):
    ev = _random_events(4000, seed=3)
    ev["x"][:500], ev["y"][:500] = 5, 7  # a hot pixel
    mask = np.zeros(GEOM.shape, bool)
    mask[3, 4] = True
    offsets = [0, 1500, 4000]
    grid = model_grid(GEOM, 9, "letterbox", (1, 1, 35, 21))
    for clip in (dict(clip_percentile=95.0), dict(clip_nonzero_mean=True)):
        kw = dict(variant=variant, hot_pixel_mask=mask, grid=grid, **clip)
        a = event_frames(ev, GEOM, offsets, **kw)
        b = event_frames(ev, GEOM, offsets, backend="numpy", **kw)
        c = event_frames_torch(ev, GEOM, offsets, **kw).numpy()
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, atol=1e-6)
    # The mask removes exactly the masked pixel's events before counting.
    keep = ~((ev["x"] == 4) & (ev["y"] == 3))
    no_mask = event_frames(ev[keep], GEOM, [0, int(keep[:1500].sum()), int(keep.sum())], variant=variant, grid=grid)
    np.testing.assert_array_equal(event_frames(ev, GEOM, offsets, variant=variant, hot_pixel_mask=mask, grid=grid),
                                  no_mask)


def test_clip_nonzero_mean_clips_each_window_at_its_nonzero_mean():
    ev = make_events([0, 0, 0, 0, 1, 2], [0] * 6, [1] * 6, range(6))  # counts 4, 1, 1 -> mean 2
    frame = event_frames(ev, Geometry(3, 1), variant="paper", clip_nonzero_mean=True)
    np.testing.assert_allclose(frame[0, 0], np.float32([2, 1, 1]) / np.float32(3))
    empty = event_frames(ev[:0], Geometry(3, 1), variant="paper", clip_nonzero_mean=True)
    assert not empty.any()


def test_representation_counts_on_the_model_grid_by_default_and_keeps_sensor_counting_on_request():
    ev = _random_events(3000, seed=4, geometry=Geometry(320, 240))
    g = Geometry(320, 240)
    model = Representation(input_size=32)
    sensor = Representation(input_size=32, count_at="sensor")
    assert model.frames([ev], g).shape == (1, 32, 32) and sensor.frames([ev], g).shape == (1, 240, 320)
    assert model.model_input(model.frames([ev], g)).shape == sensor.model_input(sensor.frames([ev], g)).shape
    # Counting first on the grid keeps contrast: the brightest model pixel is bright, not averaged away.
    peak_model = model.frames([ev], g).max()
    peak_sensor_resized = (sensor.model_input(sensor.frames([ev], g)) * np.float32(sensor.std[0])
                           + np.float32(sensor.mean[0]))[0, 0].max()
    assert peak_model > 0.5 > peak_sensor_resized


def test_authors_preset():
    rep = Representation.authors(window_us=50_000)
    assert (rep.variant, rep.count_at, rep.fit, rep.mean, rep.std, rep.input_size, rep.window_us) == (
        "authors", "model", "stretch", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 224, 50_000)
