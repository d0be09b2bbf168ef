"""The numba counting kernels check the geometry branch-free on the packed ``x | y << 16`` word
and mask indices instead of clamping them; these tests pin that check against the plain
comparison at every boundary a 16-bit lane has (W-1, W, 0x7fff, 0x8000, 0xffff), for both
kernels, and show that wrong events never escape the buffer or leak into returned counts."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.events import Geometry, make_events
from eventclip.frames import _kernels
from eventclip.frames.accumulate import count_events, count_events_reference
from eventclip.frames.errors import EventOutsideGeometryError

GEOMETRIES = [Geometry(1, 1), Geometry(37, 23), Geometry(1280, 720), Geometry(32768, 2), Geometry(3, 32768)]


def _edge_values(side: int) -> list[int]:
    return sorted({0, side - 1, side, side + 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF} - {-1})


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("per_polarity", [False, True])
def test_kernel_flags_exactly_the_events_outside(geometry, per_polarity):
    for x in _edge_values(geometry.width):
        for y in _edge_values(geometry.height):
            ev = make_events(np.array([0, x, 0]), np.array([0, y, 0]), np.array([1, 0, 1]), np.arange(3))
            outside = x >= geometry.width or y >= geometry.height
            if outside:
                with pytest.raises(EventOutsideGeometryError) as info:
                    count_events(ev, geometry, per_polarity=per_polarity)
                assert info.value.index == 1
            else:
                got = count_events(ev, geometry, per_polarity=per_polarity)
                assert np.array_equal(got, count_events_reference(ev, geometry, per_polarity=per_polarity))


def test_wrong_events_stay_inside_the_padded_buffer():
    """Raw kernel call: every index lands inside the padded buffer, so the sentinel after it survives."""
    g = Geometry(37, 23)
    rng = np.random.default_rng(1)
    n = 20_000
    ev = make_events(rng.integers(0, 65536, n), rng.integers(0, 65536, n), rng.integers(0, 2, n), np.arange(n))
    offsets = np.array([0, n // 2, n], dtype=np.int64)
    size = _kernels.padded_size(4, g.width * g.height)
    buf = np.zeros(size + 8, dtype=np.uint32)
    buf[size:] = 0xDEADBEEF
    assert _kernels.count_windows(ev.view(np.int64), offsets, g.width, g.height, True, buf[:size])
    assert np.all(buf[size:] == 0xDEADBEEF)
    assert buf[:size].sum() == n


def test_padded_size_is_planes_plus_mask_span():
    assert _kernels.span(1) == 1 and _kernels.span(921_600) == 1 << 20 and _kernels.span(1 << 20) == 1 << 20
    assert _kernels.padded_size(3, 921_600) == 2 * 921_600 + (1 << 20)
    assert _kernels.padded_size(0, 921_600) == 0


def test_geometry_wider_than_the_kernel_check_uses_the_reference():
    g = Geometry(40_000, 1)
    ev = make_events(np.array([39_999, 5, 39_999]), np.zeros(3, int), np.array([1, 0, 1]), np.arange(3))
    counts = count_events(ev, g)
    assert counts.shape == (1, 1, 40_000) and counts[0, 0, 39_999] == 2 and counts[0, 0, 5] == 1
    bad = make_events(np.array([40_000]), np.zeros(1, int), np.ones(1, int), np.arange(1))
    with pytest.raises(EventOutsideGeometryError):
        count_events(bad, g)
