"""Per-polarity counts go through a uint16 kernel with carries; it must equal the reference,
including pixels with more than 65535 events in one window (the carry path)."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.events import Geometry, make_events
from eventclip.frames.accumulate import count_events, count_events_reference
from eventclip.frames.errors import EventOutsideGeometryError

GEO = Geometry(64, 48)


def _events(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return make_events(x, y, p, np.arange(len(x), dtype=np.int64))


def test_counts_past_uint16_match_reference():
    rng = np.random.default_rng(0)
    n_hot = 3 * 65536 + 17  # wraps three times
    x = np.concatenate([np.full(n_hot, 5), rng.integers(10, GEO.width, 5000), np.full(70000, 9)])
    y = np.concatenate([np.full(n_hot, 7), rng.integers(0, GEO.height, 5000), np.full(70000, 1)])
    p = np.concatenate([np.ones(n_hot, int), rng.integers(0, 2, 5000), np.zeros(70000, int)])
    ev = _events(x, y, p)
    offsets = [0, n_hot + 2000, len(ev)]
    ours = count_events(ev, GEO, offsets, per_polarity=True)
    ref = count_events_reference(ev, GEO, offsets, per_polarity=True)
    assert ours.dtype == np.uint32 and ours.shape == (2, 2, GEO.height, GEO.width)
    assert np.array_equal(ours, ref)
    assert ours[0, 1, 7, 5] == n_hot and ours[1, 0, 1, 9] == 70000


@pytest.mark.parametrize("p", [-1, 0, 1, 2, 0x7FFF])
def test_polarity_values_match_reference(p):
    ev = _events(np.arange(10) % GEO.width, np.arange(10) % GEO.height, np.full(10, p))
    assert np.array_equal(count_events(ev, GEO, per_polarity=True), count_events_reference(ev, GEO, per_polarity=True))


def test_outside_geometry_raises_per_polarity():
    ev = _events(np.array([1, GEO.width]), np.array([1, 2]), np.array([0, 1]))
    with pytest.raises(EventOutsideGeometryError) as exc:
        count_events(ev, GEO, per_polarity=True)
    assert exc.value.index == 1
