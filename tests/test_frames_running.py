"""Counts kept while windows are open (RunningCounts) equal the counts of each closed window's
events, for duration and sliding windows, any chunking, empty windows and gaps; bad input errs."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventclip.events import Geometry, make_events
from eventclip.frames.accumulate import count_events, frames_from_counts
from eventclip.frames.errors import EventOutsideGeometryError, FramesError
from eventclip.frames.grid import model_grid
from eventclip.frames.running import RunningCounts
from eventclip.frames.windows import CountWindower, DurationWindower, SlidingWindower

GEOM = Geometry(23, 17)


def _stream(n: int, seed: int, gap_at: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 20_000, n))
    if gap_at is not None and n:
        t[gap_at % n:] += 50_000  # many empty windows in between
    return make_events(rng.integers(0, GEOM.width, n), rng.integers(0, GEOM.height, n), rng.integers(0, 2, n), t)


def _run(windower, ev, cuts, per_polarity, t_end_every=False, grid=None):
    running = RunningCounts(windower, GEOM, per_polarity=per_polarity, grid=grid)
    edges = [0, *sorted(c % (len(ev) + 1) for c in cuts), len(ev)]
    pairs = []
    for a, b in pairwise(edges):
        chunk = ev[a:b]
        t_end = None
        if t_end_every and len(chunk):  # the stream is complete up to the next event (if later than this chunk)
            following = int(ev["t"][b]) if b < len(ev) else int(chunk["t"][-1]) + 1
            t_end = following if following > int(chunk["t"][-1]) else None
        windows = windower.push(chunk, t_end)
        running.add(chunk)
        pairs += [(w, running.take(w)) for w in windows]
    pairs += [(w, running.take(w)) for w in windower.flush()]
    return pairs, running


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 10**6), max_size=10),
       per_polarity=st.booleans(), sliding=st.booleans(), gap=st.one_of(st.none(), st.integers(0, 300)),
       t_end_every=st.booleans(), fit=st.sampled_from([None, "letterbox", "crop", "stretch"]))
def test_running_counts_equal_counts_of_each_closed_window(n, seed, cuts, per_polarity, sliding, gap, t_end_every,
                                                           fit):
    """Also on a model grid (``fit`` set): counts kept while open equal the grid counts of the window."""
    ev = _stream(n, seed, gap)
    windower = SlidingWindower(3_000, 1_000) if sliding else DurationWindower(2_500)
    grid = None if fit is None else model_grid(GEOM, 8, fit)
    pairs, running = _run(windower, ev, cuts, per_polarity, t_end_every, grid)
    for w, counts in pairs:
        want = count_events(w.events, GEOM, per_polarity=per_polarity, grid=grid)[0]
        assert counts.dtype == np.uint32 and np.array_equal(counts, want), (w.t_start, w.t_end)
    assert running.open_windows == 0
    if not sliding and fit in (None, "letterbox", "stretch"):  # crop drops the sides
        assert sum(int(c.sum()) for _, c in pairs) == n


def test_frames_from_running_counts_equal_event_frames():
    from eventclip.frames import Representation

    ev = _stream(2_000, 3)
    for variant in ("paper", "authors", "polarity"):
        for count_at in ("model", "sensor"):
            rep = Representation(variant=variant, window_us=2_500, input_size=16, count_at=count_at,
                                 clip_nonzero_mean=variant == "authors")
            pairs, _ = _run(DurationWindower(2_500), ev, list(range(0, 2_000, 77)), variant != "paper",
                            grid=rep.grid(GEOM))
            counts = np.stack([c for _, c in pairs])
            want = rep.frames([w.parts for w, _ in pairs], GEOM)
            assert want.shape[-2:] == ((16, 16) if count_at == "model" else GEOM.shape)
            assert np.array_equal(rep.frames_from_counts(counts, GEOM), want)


@pytest.mark.parametrize("on_grid", [False, True])
def test_event_outside_geometry_is_reported_by_add(on_grid):
    ev = _stream(50, 4)
    ev["y"][30] = GEOM.height
    w = DurationWindower(2_500)
    running = RunningCounts(w, GEOM, grid=model_grid(GEOM, 8) if on_grid else None)
    w.push(ev)
    with pytest.raises(EventOutsideGeometryError) as info:
        running.add(ev)
    assert info.value.index == 30


def test_needs_a_time_grid_windower_and_counts_of_the_right_shape():
    with pytest.raises(TypeError, match="duration or sliding"):
        RunningCounts(CountWindower(10), GEOM)
    assert not RunningCounts.supports(CountWindower(10)) and RunningCounts.supports(SlidingWindower(10, 5))
    with pytest.raises(FramesError, match=r"\(B, 2, H, W\)"):
        frames_from_counts(np.zeros((1, GEOM.height, GEOM.width), np.uint32), GEOM, variant="authors")
    with pytest.raises(FramesError, match="23x17"):
        frames_from_counts(np.zeros((1, 5, 5), np.uint32), GEOM)


def test_window_taken_without_events_is_zero():
    w = DurationWindower(1_000)
    running = RunningCounts(w, GEOM)
    ev = _stream(10, 5)
    windows = w.push(ev[:5], int(ev["t"][4]) + 5_000)
    running.add(ev[:5])
    counts = [running.take(x) for x in windows]
    assert any(c.sum() == 0 for c in counts) and sum(int(c.sum()) for c in counts) == 5


@pytest.mark.parametrize("huge_sensor_path", [False, True])
def test_per_polarity_counts_past_65535_on_one_pixel_are_exact(monkeypatch, huge_sensor_path):
    """Per polarity the open windows count in uint16 plus carries (half the cache footprint); a pixel
    that passes 65535 events, over several chunks, must still give the exact uint32 count, also on
    the numpy path that sensors wider than the kernels' limit take."""
    from eventclip.frames import _kernels

    if huge_sensor_path:
        monkeypatch.setattr(_kernels, "MAX_SIDE", 8)
    n = 140_000
    rng = np.random.default_rng(9)
    x = np.where(np.arange(n) % 7 == 0, rng.integers(0, GEOM.width, n), 3)
    ev = make_events(x, np.full(n, 5), np.where(np.arange(n) % 3 == 0, 0, 1), np.arange(n) // 20)
    windower = DurationWindower(10_000)
    pairs, _ = _run(windower, ev, [40_000, 70_000, 100_001], per_polarity=True)
    assert len(pairs) == 1
    window, counts = pairs[0]
    want = count_events(ev, GEOM, per_polarity=True)[0]
    assert counts.dtype == np.uint32 and counts[1, 5, 3] > 65_535
    np.testing.assert_array_equal(counts, want)
