"""Windows keep the chunks they span as pieces (views) and the frames stage counts the pieces in
place: the counts must equal those of the joined events, whatever the chunking, and errors must
name the event's index in the joined stream."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eventclip.events import Geometry, concat_events, make_events
from eventclip.frames.accumulate import (
    count_events,
    count_events_reference,
    count_events_torch,
    event_frames,
    stack_windows,
)
from eventclip.frames.errors import EventOutsideGeometryError
from eventclip.frames.windows import DurationWindower, SlidingWindower, Window

GEOM = Geometry(19, 11)


def _events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, GEOM.width, n), rng.integers(0, GEOM.height, n), rng.integers(0, 2, n),
                       np.sort(rng.integers(0, 5_000, n)))


def _split(ev: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    edges = [0, *sorted(c % (len(ev) + 1) for c in cuts), len(ev)]
    return [ev[a:b] for a, b in pairwise(edges)]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 400), cuts=st.lists(st.integers(0, 10_000), max_size=12),
       bounds=st.lists(st.integers(0, 10_000), max_size=6), per_polarity=st.booleans())
def test_counting_pieces_equals_counting_the_joined_events(n, cuts, bounds, per_polarity):
    ev = _events(n)
    pieces = _split(ev, cuts)
    offsets = [0, *sorted(b % (n + 1) for b in bounds), n]
    want = count_events_reference(ev, GEOM, offsets, per_polarity=per_polarity)
    assert np.array_equal(count_events(pieces, GEOM, offsets, per_polarity=per_polarity), want)
    assert np.array_equal(count_events_reference(pieces, GEOM, offsets, per_polarity=per_polarity), want)
    got_torch = count_events_torch(pieces, GEOM, offsets, per_polarity=per_polarity)
    assert np.array_equal(got_torch.numpy().astype(np.uint32), want)


@pytest.mark.parametrize("windower", [lambda: DurationWindower(700), lambda: SlidingWindower(900, 300)],
                         ids=["duration", "sliding"])
def test_windows_over_small_chunks_hold_pieces_and_frames_match(windower):
    ev = _events(3000, seed=1)
    chunks = _split(ev, list(range(0, 3000, 37)))  # ~80 chunks, many per window
    w = windower()
    windows: list[Window] = []
    for c in chunks:
        windows += w.push(c)
    windows += w.flush()
    assert max(len(win.parts) for win in windows) > 5
    for win in windows:
        t = ev["t"]
        want = ev[(t >= win.t_start) & (t < win.t_end)]
        assert win.n_events == len(want)
        assert np.array_equal(win.events, want)
        assert all(len(p) for p in win.parts)
        assert all(any(np.shares_memory(p, c) for c in chunks) for p in win.parts)
    pieces, offsets = stack_windows([win.parts for win in windows])
    joined, joined_offsets = stack_windows([win.events for win in windows])
    assert np.array_equal(offsets, joined_offsets)
    assert np.array_equal(concat_events(pieces), concat_events(joined))
    for variant in ("paper", "authors", "polarity"):
        a = event_frames(pieces, GEOM, offsets, variant=variant)
        b = event_frames(concat_events(joined), GEOM, offsets, variant=variant)
        assert np.array_equal(a, b)


def test_window_pieces_are_views_not_copies():
    ev = _events(1000, seed=2)
    chunks = _split(ev, [100, 250, 600])
    w = DurationWindower(10_000)
    for c in chunks:
        assert w.push(c) == []
    (win,) = w.flush()
    assert len(win.parts) == 4
    assert all(np.shares_memory(p, c) for p, c in zip(win.parts, chunks, strict=True))


@pytest.mark.parametrize("per_polarity", [False, True])
def test_event_outside_geometry_in_a_later_piece_names_its_joined_index(per_polarity):
    ev = _events(300, seed=3)
    ev["x"][250] = GEOM.width
    pieces = _split(ev, [100, 200])
    with pytest.raises(EventOutsideGeometryError) as info:
        count_events(pieces, GEOM, [0, 150, 300], per_polarity=per_polarity)
    assert info.value.index == 250


def test_empty_window_and_empty_pieces():
    assert count_events([], GEOM, [0, 0, 0]).shape == (2, GEOM.height, GEOM.width)
    ev = _events(10)
    got = count_events([ev[:0], ev, ev[:0]], GEOM, [0, 0, 10, 10])
    assert np.array_equal(got, count_events_reference(ev, GEOM, [0, 0, 10, 10]))
    assert Window(5, 9).n_events == 0 and len(Window(5, 9).events) == 0
    assert Window.of(0, 1, ev[:0]).parts == ()


def test_torch_pieces_on_cpu_match():
    ev = _events(500, seed=4)
    got = count_events_torch(_split(ev, [10, 20, 499]), GEOM, [0, 250, 500])
    assert torch.equal(got, count_events_torch(ev, GEOM, [0, 250, 500]))
