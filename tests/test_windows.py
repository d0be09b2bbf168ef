"""Streaming windows: exact membership against brute-force references, chunking invariance, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventclip.events import EventChunk, Geometry, make_events
from eventclip.frames.errors import EventOrderError, FramesError, WindowConfigError
from eventclip.frames.windows import (
    CountWindower,
    DurationWindower,
    MixedWindower,
    SlidingWindower,
    Window,
    iter_windows,
    make_windower,
)


def _events(ts) -> np.ndarray:
    ts = np.asarray(ts, dtype=np.int64)
    n = len(ts)
    return make_events(np.arange(n) % 7, np.arange(n) % 5, np.arange(n) % 2, ts)


def _split(ev: np.ndarray, cuts) -> list[np.ndarray]:
    cuts = sorted({min(max(int(c), 0), len(ev)) for c in cuts})
    return [ev[a:b] for a, b in zip([0, *cuts], [*cuts, len(ev)], strict=True)]


def _run(windower, chunks, t_end_us=None) -> list[Window]:
    out: list[Window] = []
    for i, c in enumerate(chunks):
        out += windower.push(c, t_end_us if i == len(chunks) - 1 else None)
    return out + windower.flush()


def _as_tuples(windows):
    return [(w.t_start, w.t_end, w.events["t"].tolist(), w.events["x"].tolist()) for w in windows]


timestamps = st.lists(st.integers(0, 500), min_size=0, max_size=80).map(sorted)
cuts = st.lists(st.integers(0, 80), max_size=6)


@settings(max_examples=60, deadline=None)
@given(ts=timestamps, cuts=cuts, delta=st.integers(1, 60), offset=st.integers(0, 10_000))
def test_duration_windows_match_reference_for_any_chunking(ts, cuts, delta, offset):
    ev = _events(np.asarray(ts, dtype=np.int64) + offset)
    got = _run(DurationWindower(delta), _split(ev, cuts))
    if len(ev) == 0:
        assert got == []
        return
    t0 = int(ev["t"][0]) // delta * delta
    n_windows = (int(ev["t"][-1]) - t0) // delta + 1
    assert len(got) == n_windows  # empty windows reported, never skipped
    for k, w in enumerate(got):
        assert (w.t_start, w.t_end) == (t0 + k * delta, t0 + (k + 1) * delta)
        want = ev[(ev["t"] >= w.t_start) & (ev["t"] < w.t_end)]
        assert np.array_equal(w.events, want)
    assert sum(w.n_events for w in got) == len(ev)


def test_duration_windows_close_as_soon_as_time_passes_and_honour_t_end():
    w = DurationWindower(10)
    assert w.push(_events([3, 5])) == []
    out = w.push(_events([21]))
    assert [(x.t_start, x.t_end, x.n_events) for x in out] == [(0, 10, 2), (10, 20, 0)]
    out = w.push(_events([]), t_end_us=40)
    assert [(x.t_start, x.t_end, x.n_events) for x in out] == [(20, 30, 1), (30, 40, 0)]
    assert w.flush() == []


def test_windows_are_views_of_the_pushed_chunk():
    ev = _events(np.arange(100))
    out = DurationWindower(10).push(ev)
    assert all(np.shares_memory(x.events, ev) for x in out)


def test_given_t0_aligns_the_grid():
    out = _run(DurationWindower(10, t0_us=5), [_events([5, 14, 15, 31])])
    assert [(x.t_start, x.n_events) for x in out] == [(5, 2), (15, 1), (25, 1)]
    with pytest.raises(EventOrderError, match="t0_us"):
        DurationWindower(10, t0_us=50).push(_events([5]))
    with pytest.raises(EventOrderError, match="t0_us"):
        MixedWindower(10, 3, t0_us=50).push(_events([5]))
    out = _run(MixedWindower(10, 3, t0_us=5), [_events([5, 6, 7, 8, 20])])
    assert [(x.t_start, x.t_end, x.n_events) for x in out] == [(5, 8, 3), (8, 18, 1), (18, 28, 1)]


@settings(max_examples=60, deadline=None)
@given(ts=timestamps, cuts=cuts, length=st.integers(1, 60), data=st.data())
def test_sliding_windows_put_each_event_in_every_window_covering_it(ts, cuts, length, data):
    stride = data.draw(st.integers(1, length))
    ev = _events(ts)
    got = _run(SlidingWindower(length, stride), _split(ev, cuts))
    if len(ev) == 0:
        assert got == []
        return
    t0 = int(ev["t"][0]) // stride * stride
    starts = [w.t_start for w in got]
    assert starts == [t0 + k * stride for k in range(len(got))]
    assert starts[-1] <= ev["t"][-1] < starts[-1] + stride
    for w in got:
        assert w.t_end - w.t_start == length
        assert np.array_equal(w.events, ev[(ev["t"] >= w.t_start) & (ev["t"] < w.t_end)])
    membership = sum(w.n_events for w in got)
    expected = sum(sum(1 for s in starts if s <= t < s + length) for t in ev["t"])
    assert membership == expected


def test_sliding_equal_stride_is_tumbling():
    ev = _events(np.sort(np.random.default_rng(1).integers(0, 1000, 300)))
    a = _as_tuples(_run(SlidingWindower(50, 50), [ev]))
    b = _as_tuples(_run(DurationWindower(50), [ev]))
    assert a == b


@settings(max_examples=60, deadline=None)
@given(ts=timestamps, cuts=cuts, n=st.integers(1, 20))
def test_count_windows(ts, cuts, n):
    ev = _events(ts)
    got = _run(CountWindower(n), _split(ev, cuts))
    assert [w.n_events for w in got] == [n] * (len(ev) // n) + ([len(ev) % n] if len(ev) % n else [])
    if got:
        assert np.array_equal(np.concatenate([w.events for w in got]), ev)
    for w in got:
        assert (w.t_start, w.t_end) == (int(w.events["t"][0]), int(w.events["t"][-1]) + 1)


def _mixed_reference(ts: list[int], delta: int, n: int) -> list[tuple[int, int, list[int]]]:
    """Plain-Python mixed mode: close at delta µs or n events, whichever first."""
    out = []
    if not ts:
        return out
    start = ts[0] // delta * delta
    i = 0
    while i < len(ts):
        members = []
        while i < len(ts) and ts[i] < start + delta and len(members) < n:
            members.append(ts[i])
            i += 1
        if len(members) == n:
            end = members[-1] + 1
        else:
            end = start + delta
        out.append((start, end, members))
        start = end
    return out


@settings(max_examples=80, deadline=None)
@given(ts=timestamps, cuts=cuts, delta=st.integers(1, 60), n=st.integers(1, 12))
def test_mixed_windows_match_reference_for_any_chunking(ts, cuts, delta, n):
    ev = _events(ts)
    got = _run(MixedWindower(delta, n), _split(ev, cuts))
    assert [(w.t_start, w.t_end, w.events["t"].tolist()) for w in got] == _mixed_reference(list(ts), delta, n)


def test_iter_windows_takes_event_chunks_and_their_t_end():
    g = Geometry(8, 8)
    chunks = [EventChunk(_events([1, 2]), g, t_end_us=10), EventChunk(_events([]), g, t_end_us=30)]
    out = list(iter_windows(chunks, "delta_t", window_us=10))
    assert [(w.t_start, w.n_events) for w in out] == [(0, 2), (10, 0), (20, 0)]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "delta_t", "window_us": 0}, "window_us must be a positive integer"),
        ({"mode": "delta_t", "window_us": -5}, "window_us must be a positive integer"),
        ({"mode": "n_events", "n_events": 0}, "n_events must be a positive integer"),
        ({"mode": "sliding", "window_us": 10, "stride_us": 20}, "stride_us <= window_us"),
        ({"mode": "sliding", "window_us": 10}, "needs stride_us"),
        ({"mode": "mixed", "window_us": 10}, "needs n_events"),
        ({"mode": "tumbling", "window_us": 10}, "unknown window mode"),
        ({"mode": "delta_t", "window_us": 2.5}, "positive integer"),
    ],
)
def test_bad_window_parameters_raise_clear_errors(kwargs, match):
    with pytest.raises(WindowConfigError, match=match):
        make_windower(**kwargs)


def test_time_going_backwards_is_an_error_naming_the_event():
    w = DurationWindower(10)
    with pytest.raises(EventOrderError, match="event 2"):
        w.push(_events([1, 5, 3]))
    w = DurationWindower(10)
    w.push(_events([1, 5]))
    with pytest.raises(EventOrderError, match="event 2 .*earlier than the previous chunk"):
        w.push(_events([4]))
    with pytest.raises(EventOrderError, match="t_end_us"):
        w.push(_events([]), t_end_us=5)
    w.push(_events([]), t_end_us=50)
    with pytest.raises(EventOrderError, match="t_end_us=50"):
        w.push(_events([49]))


def test_wrong_dtype_is_refused():
    with pytest.raises(FramesError, match="missing fields"):
        DurationWindower(10).push(np.zeros(3, dtype=[("t", "<i8")]))
