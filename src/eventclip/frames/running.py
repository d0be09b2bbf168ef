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
from eventclip.frames.accumulate import _check_grid, _raise_outside, as_event_array, count_events_reference
from eventclip.frames.grid import ModelGrid
from eventclip.frames.windows import Window, _GridWindower


class _WindowCounts:
    """The counts of one open window: uint32, or per polarity uint16 plus uint32 carries.

    Why uint16 per polarity: two 1280x720 uint32 planes (7.4 MB) outgrow the cache this process
    gets on the development machine and the scatter falls to 77-97 Mev/s; as uint16 (3.7 MB) it
    runs 266-345 (``count_windows16``; see BENCHMARKS.md, Frame accumulation). The carries are
    touched only when a pixel passes 65535 events, so their zero pages cost nothing until then.
    """

    def __init__(self, channels: int, plane: int, narrow: bool, grid: ModelGrid | None = None) -> None:
        """``narrow``: uint16 counts plus carries (per polarity, where the kernels can count the sensor).
        On a ``grid`` the planes are the grid's (small: uint32, plus the mapped kernel's trash slot)."""
        size = channels * plane + 1 if grid is not None else _kernels.padded_size(channels, plane)
        self.plane = plane
        self.used = channels * plane
        self.per_polarity = channels == 2
        self.grid = grid
        self.counts = np.zeros(size, dtype=np.uint16 if narrow else np.uint32)
        self.carry = np.zeros(size, dtype=np.uint32) if narrow else None
        self.wrapped = False

    def add(self, words: np.ndarray, n: int, geometry: Geometry) -> bool:
        """Count the ``n`` events of ``words`` (their int64 view); True when one lay outside the geometry."""
        offsets = np.array([0, n], dtype=np.int64)
        w, h = geometry.width, geometry.height
        if self.grid is not None:
            x_lut, y_lut = self.grid.kernel_tables
            return bool(_kernels.count_windows_mapped(words, offsets, x_lut, y_lut, self.plane, self.per_polarity,
                                                      self.counts))
        if self.carry is None:
            return bool(_kernels.count_windows(words, offsets, w, h, self.per_polarity, self.counts))
        flags = _kernels.count_windows16(words, offsets, w, h, True, self.counts, self.carry)
        self.wrapped |= bool(flags & 2)
        return bool(flags & 1)

    def add_counts(self, counts: np.ndarray) -> None:
        """Add uint32 counts made elsewhere (the numpy reference, for sensors the kernels cannot take;
        their buffers are never narrow)."""
        self.counts[: counts.size] += counts.reshape(-1)

    def total(self) -> np.ndarray:
        """The counts as one flat uint32 array of ``used`` values."""
        if self.carry is None:
            return self.counts[: self.used]
        total = self.counts[: self.used].astype(np.uint32)
        if self.wrapped:
            total += self.carry[: self.used] << np.uint32(16)
        return total


class RunningCounts:
    """One count buffer per open window of a :class:`~eventclip.frames.windows.DurationWindower` or
    :class:`~eventclip.frames.windows.SlidingWindower` (times in µs; counts in events per pixel).

    ``per_polarity`` keeps OFF and ON counts apart (channel 0 = OFF, 1 = ON), as the ``authors``
    and ``polarity`` frames need. Memory: one H*W uint32 buffer per open window (per polarity: two
    H*W uint16 planes, plus carries only where a pixel passes 65535), i.e. ceil(length / stride)
    buffers for sliding windows. With a ``grid`` (:meth:`Representation.grid
    <eventclip.frames.preprocess.Representation.grid>`) events are counted on the model's S x S grid
    instead, and the buffers are S*S uint32 per channel.
    """

    @staticmethod
    def supports(windower: object) -> bool:
        """Whether ``windower`` cuts windows on a time grid (duration or sliding), which this needs."""
        return isinstance(windower, _GridWindower)

    def __init__(self, windower: _GridWindower, geometry: Geometry, *, per_polarity: bool = False,
                 grid: ModelGrid | None = None) -> None:
        if not self.supports(windower):
            raise TypeError(f"RunningCounts needs a duration or sliding windower, got {type(windower).__name__}")
        if grid is not None:
            _check_grid(grid, geometry)
        self.windower = windower
        self.geometry = geometry
        self.per_polarity = per_polarity
        self.grid = grid
        self._channels = 2 if per_polarity else 1
        self._shape = grid.shape if grid is not None else geometry.shape
        self._plane = self._shape[0] * self._shape[1]
        self._open: dict[int, _WindowCounts] = {}

    @property
    def open_windows(self) -> int:
        """How many windows hold counts that :meth:`take` has not collected yet."""
        return len(self._open)

    def _kernels_fit(self) -> bool:
        """Whether the numba kernels can count this sensor (else the numpy reference does)."""
        return max(self.geometry.width, self.geometry.height) <= _kernels.MAX_SIDE

    def _buffer(self, k: int) -> _WindowCounts:
        buf = self._open.get(k)
        if buf is None:
            narrow = self.grid is None and self.per_polarity and self._kernels_fit()
            buf = self._open[k] = _WindowCounts(self._channels, self._plane, narrow, self.grid)
        return buf

    def add(self, events: np.ndarray) -> None:
        """Count a chunk that the windower has just accepted into every window it falls in."""
        w = self.windower
        if len(events) == 0 or w.t0_us is None:
            return
        events = np.ascontiguousarray(as_event_array(events))
        t0, stride, length = w.t0_us, w.stride_us, w.window_us
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

    def _count(self, events: np.ndarray, lo: int, hi: int, buf: _WindowCounts) -> None:
        g = self.geometry
        piece = events[lo:hi]
        if self.grid is None and not self._kernels_fit():
            buf.add_counts(count_events_reference(piece, g, per_polarity=self.per_polarity))
        elif buf.add(piece.view(np.int64), hi - lo, g):
            _raise_outside(events, g)

    def take(self, window: Window) -> np.ndarray:
        """The counts of a window the windower has closed: uint32 (H, W), or (2, H, W) per polarity
        (H, W = S, S on a grid)."""
        w = self.windower
        k = -1 if w.t0_us is None else (window.t_start - w.t0_us) // w.stride_us
        buf = self._open.pop(k, None)
        shape = (2, *self._shape) if self.per_polarity else self._shape
        if buf is None:
            return np.zeros(shape, dtype=np.uint32)
        return buf.total().reshape(shape)
