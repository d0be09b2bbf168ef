"""Counts per pixel of time-grid windows, kept up to date while the windows are still open.

Why: counting a window when it closes puts the whole count between the window's end and its
result (50 ms windows at 50 Mev/s hold 2.5 M events: 7-15 ms of counting on the development
machine). Counting each chunk as it arrives spreads that work over the window's lifetime, so when
the window closes only the normalisation, the resize and the encoder remain. The counts equal
:func:`eventclip.frames.accumulate.count_events` over the window's events (tested).

Use it beside the windower that cuts the windows, in this order for every chunk::

    windows = windower.push(chunk.events, chunk.t_end_us)   # validates and sets the time grid
    running.add(chunk.events)                                 # counts into every window it touches
    counts = [running.take(w) for w in windows]               # (H, W) or (2, H, W) uint32 each
"""

from __future__ import annotations

import numpy as np

from eventclip.events import Geometry
from eventclip.frames import _kernels
from eventclip.frames.accumulate import _raise_outside, as_event_array, count_events_reference
from eventclip.frames.windows import Window, _GridWindower


class RunningCounts:
    """One count buffer per open window of a :class:`~eventclip.frames.windows.DurationWindower` or
    :class:`~eventclip.frames.windows.SlidingWindower` (times in µs; counts in events per pixel).

    ``per_polarity`` keeps OFF and ON counts apart (channel 0 = OFF, 1 = ON), as the ``authors``
    and ``polarity`` frames need. Memory: one H*W (x2 per polarity) uint32 buffer per open window,
    i.e. ceil(length / stride) buffers for sliding windows.
    """

    @staticmethod
    def supports(windower: object) -> bool:
        """Whether ``windower`` cuts windows on a time grid (duration or sliding), which this needs."""
        return isinstance(windower, _GridWindower)

    def __init__(self, windower: _GridWindower, geometry: Geometry, *, per_polarity: bool = False) -> None:
        if not self.supports(windower):
            raise TypeError(f"RunningCounts needs a duration or sliding windower, got {type(windower).__name__}")
        self.windower = windower
        self.geometry = geometry
        self.per_polarity = per_polarity
        self._channels = 2 if per_polarity else 1
        self._plane = geometry.width * geometry.height
        self._open: dict[int, np.ndarray] = {}

    @property
    def open_windows(self) -> int:
        """How many windows hold counts that :meth:`take` has not collected yet."""
        return len(self._open)

    def _buffer(self, k: int) -> np.ndarray:
        buf = self._open.get(k)
        if buf is None:
            buf = self._open[k] = np.zeros(_kernels.padded_size(self._channels, self._plane), dtype=np.uint32)
        return buf

    def add(self, events: np.ndarray) -> None:
        """Count a chunk that the windower has just accepted into every window it falls in."""
        w = self.windower
        if len(events) == 0 or w.t0_us is None:
            return
        events = np.ascontiguousarray(as_event_array(events))
        t0, stride, length = w.t0_us, w.stride_us, w.length_us
        first_t, last_t = int(events["t"][0]), int(events["t"][-1])
        k_lo = max(0, (first_t - t0 - length) // stride + 1)
        k_hi = (last_t - t0) // stride
        t = None
        for k in range(k_lo, k_hi + 1):
            start = t0 + k * stride
            end = start + length
            lo, hi = 0, len(events)
            if first_t < start or last_t >= end:
                if t is None:
                    t = np.ascontiguousarray(events["t"])
                lo, hi = int(np.searchsorted(t, start, side="left")), int(np.searchsorted(t, end, side="left"))
            if hi > lo:
                self._count(events, lo, hi, self._buffer(k))

    def _count(self, events: np.ndarray, lo: int, hi: int, buf: np.ndarray) -> None:
        g = self.geometry
        piece = events[lo:hi]
        if max(g.width, g.height) > _kernels.MAX_SIDE:
            ref = count_events_reference(piece, g, per_polarity=self.per_polarity)
            buf[: ref.size] += ref.reshape(-1)
            return
        if _kernels.count_windows(piece.view(np.int64), np.array([0, hi - lo], dtype=np.int64), g.width, g.height,
                                  self.per_polarity, buf):
            _raise_outside(events, g)

    def take(self, window: Window) -> np.ndarray:
        """The counts of a window the windower has closed: uint32 (H, W), or (2, H, W) per polarity."""
        w = self.windower
        g = self.geometry
        k = -1 if w.t0_us is None else (window.t_start - w.t0_us) // w.stride_us
        buf = self._open.pop(k, None)
        shape = (2, g.height, g.width) if self.per_polarity else (g.height, g.width)
        if buf is None:
            return np.zeros(shape, dtype=np.uint32)
        return buf[: self._channels * self._plane].reshape(shape)
