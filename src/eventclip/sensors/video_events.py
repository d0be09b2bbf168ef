"""Events from ordinary video (Fig. 2 of Jeong et al.), incrementally, one frame at a time.

Two models:

- ``dvs``: the standard DVS simulator. Each pixel keeps a reference log intensity; when the new
  frame's log intensity ``L = ln(I + eps)`` (I in 0-255 units) has moved ``k`` whole contrast
  thresholds away from it, the pixel emits ``k`` events (ON for brighter, OFF for darker), each
  stamped at the time the intensity, interpolated linearly between the two frames, crossed that
  threshold; the reference moves by ``k`` thresholds. An optional refractory period (µs) drops
  a pixel's events that follow its previous event too closely (the reference still moves, as in
  a sensor whose pixel was reset but could not report).
- ``paper``: the paper's simple mode: linear grayscale difference of consecutive frames, one
  event per pixel whose difference exceeds a binary threshold (default 10 on 0-255), stamped
  at the newer frame's time. :func:`paper_frame` sums N = 16 such binary maps and clamps them
  into one frame.

``VideoToEvents.push(frame, t_us)`` returns the events between the previous frame and this
one, so the converter runs on a live camera as well as on a file.
"""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.sensors.errors import VideoError

VideoMode = Literal["dvs", "paper"]


def _gray(frame: np.ndarray) -> np.ndarray:
    """A gray frame as float64 in 0-255 units (uint8 as is, float frames must be in [0, 1])."""
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise VideoError(
            f"frames must be 2-D grayscale (height, width), got shape {frame.shape}; convert colour frames "
            f"first (e.g. cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))"
        )
    if frame.dtype == np.uint8:
        return frame.astype(np.float64)
    if np.issubdtype(frame.dtype, np.floating):
        lo, hi = float(frame.min(initial=0.0)), float(frame.max(initial=0.0))
        if lo < 0.0 or hi > 1.0 or not np.isfinite(frame).all():
            raise VideoError(
                f"float frames must hold intensities in [0, 1], got values in [{lo}, {hi}]; "
                f"pass uint8 frames for the 0-255 range"
            )
        return frame.astype(np.float64) * 255.0
    raise VideoError(f"frames must be uint8 (0-255) or float in [0, 1], got dtype {frame.dtype}")


def refractory_filter_reference(pixel: np.ndarray, t: np.ndarray, last_t: np.ndarray, refractory_us: int) -> np.ndarray:
    """Plain-Python definition of the refractory filter (events sorted by pixel, then time).

    Keeps an event when at least ``refractory_us`` µs passed since its pixel's last kept event;
    updates ``last_t`` (per pixel, µs) in place. Returns the keep mask.
    """
    keep = np.zeros(len(t), dtype=bool)
    for i in range(len(t)):
        if t[i] - last_t[pixel[i]] >= refractory_us:
            keep[i] = True
            last_t[pixel[i]] = t[i]
    return keep


@numba.njit(cache=True, nogil=True)
def refractory_filter(pixel: np.ndarray, t: np.ndarray, last_t: np.ndarray, refractory_us: int) -> np.ndarray:
    """Numba version of :func:`refractory_filter_reference` (same arguments, same result)."""
    keep = np.zeros(len(t), dtype=np.bool_)
    for i in range(len(t)):
        if t[i] - last_t[pixel[i]] >= refractory_us:
            keep[i] = True
            last_t[pixel[i]] = t[i]
    return keep


class VideoToEvents:
    """Incremental video-to-events converter; ``push(frame, t_us)`` -> events since the last frame.

    ``mode="dvs"``: ``on_threshold`` / ``off_threshold`` are log-intensity contrasts (default
    0.2), ``log_eps`` the offset in ``ln(I + eps)`` (0-255 units), ``refractory_us`` the dead
    time per pixel. ``mode="paper"``: ``threshold`` is the grayscale difference (0-255) an
    event needs (default 10). Timestamps are µs and must increase from frame to frame.
    """

    def __init__(
        self,
        mode: VideoMode = "dvs",
        *,
        threshold: float | None = None,
        on_threshold: float = 0.2,
        off_threshold: float = 0.2,
        log_eps: float = 1.0,
        refractory_us: int = 0,
    ) -> None:
        if mode not in ("dvs", "paper"):
            raise VideoError(f"unknown video mode {mode!r}; use 'dvs' or 'paper'")
        if mode == "dvs" and threshold is not None:
            on_threshold = off_threshold = threshold
        for name, value in (("on_threshold", on_threshold), ("off_threshold", off_threshold), ("log_eps", log_eps)):
            if not value > 0:
                raise VideoError(f"{name} must be > 0, got {value}")
        if refractory_us < 0:
            raise VideoError(f"refractory_us must be >= 0 µs, got {refractory_us}")
        self.mode = mode
        self.threshold = 10.0 if threshold is None else float(threshold)
        if mode == "paper" and not self.threshold >= 0:
            raise VideoError(f"threshold must be >= 0 (grayscale levels 0-255), got {threshold}")
        self.on_threshold = float(on_threshold)
        self.off_threshold = float(off_threshold)
        self.log_eps = float(log_eps)
        self.refractory_us = int(refractory_us)
        self.geometry: Geometry | None = None
        self._prev: np.ndarray | None = None  # previous frame: log intensity (dvs) or gray (paper)
        self._ref: np.ndarray | None = None  # per-pixel reference log intensity (dvs)
        self._last_event_t: np.ndarray | None = None
        self._t_prev: int | None = None

    def push(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Add the next frame (grayscale, uint8 0-255 or float 0-1) taken at ``t_us`` µs; return new events."""
        gray = _gray(frame)
        t_us = int(t_us)
        if self.geometry is None:
            h, w = gray.shape
            if w > 65536 or h > 65536:
                raise VideoError(f"frame of {w}x{h} pixels is larger than event coordinates allow (65536)")
            self.geometry = Geometry(w, h)
        elif gray.shape != self.geometry.shape:
            raise VideoError(
                f"frame has shape {gray.shape} but the stream started at {self.geometry.shape} (height, width); "
                f"all frames of one video must have the same size"
            )
        if self._t_prev is not None and t_us <= self._t_prev:
            raise VideoError(f"frame time {t_us} µs is not after the previous frame's {self._t_prev} µs")
        current = gray if self.mode == "paper" else np.log(gray + self.log_eps)
        if self._prev is None:
            events = np.zeros(0, dtype=EVENT_DTYPE)
            if self.mode == "dvs":
                self._ref = current.copy()
                self._last_event_t = np.full(current.size, np.iinfo(np.int64).min // 2, dtype=np.int64)
        elif self.mode == "paper":
            events = self._paper_events(self._prev, current, t_us)
        else:
            events = self._dvs_events(self._prev, current, self._t_prev, t_us)
        self._prev = current
        self._t_prev = t_us
        return events

    def _paper_events(self, prev: np.ndarray, cur: np.ndarray, t_us: int) -> np.ndarray:
        diff = cur - prev
        ys, xs = np.nonzero(np.abs(diff) > self.threshold)
        ev = np.empty(len(xs), dtype=EVENT_DTYPE)
        ev["x"], ev["y"] = xs, ys
        ev["p"] = diff[ys, xs] > 0
        ev["t"] = t_us
        return ev

    def _dvs_events(self, prev: np.ndarray, cur: np.ndarray, t0: int, t1: int) -> np.ndarray:
        assert self._ref is not None and self._last_event_t is not None and self.geometry is not None
        ref = self._ref.ravel()
        l0, l1 = prev.ravel(), cur.ravel()
        delta = l1 - ref
        on = delta > 0
        step = np.where(on, self.on_threshold, self.off_threshold)
        # A hair of tolerance so a change of exactly k thresholds gives k events despite rounding.
        n = np.floor(np.abs(delta) / step + 1e-9).astype(np.int64)
        pix = np.flatnonzero(n)
        if pix.size == 0:
            return np.zeros(0, dtype=EVENT_DTYPE)
        counts = n[pix]
        pixel = np.repeat(pix, counts)
        k = np.arange(len(pixel)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        sign = np.where(on[pixel], 1.0, -1.0)
        level = ref[pixel] + sign * k * step[pixel]
        span = l1[pixel] - l0[pixel]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(span != 0, (level - l0[pixel]) / span, 1.0)
        t = t0 + np.rint(np.clip(frac, 0.0, 1.0) * (t1 - t0)).astype(np.int64)
        t = np.clip(t, t0 + 1, t1)
        ref[pix] += np.where(on[pix], 1.0, -1.0) * counts * step[pix]
        if self.refractory_us:
            keep = refractory_filter(pixel, t, self._last_event_t, self.refractory_us)
            pixel, t, sign = pixel[keep], t[keep], sign[keep]
        order = np.argsort(t, kind="stable")
        pixel, t, sign = pixel[order], t[order], sign[order]
        ev = np.empty(len(pixel), dtype=EVENT_DTYPE)
        ev["x"] = pixel % self.geometry.width
        ev["y"] = pixel // self.geometry.width
        ev["p"] = sign > 0
        ev["t"] = t
        return ev


def paper_frame(frames: np.ndarray, threshold: float = 10.0) -> np.ndarray:
    """The paper's video event frame: binary maps |I_k - I_(k-1)| > threshold (0-255 units) of
    consecutive frames, summed and clamped to [0, 1] -> float32 (H, W).

    Pass N + 1 frames (the paper uses N = 16 differences); frames as for :class:`VideoToEvents`.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) < 2:
        raise VideoError(f"paper_frame needs a stack of at least 2 grayscale frames (N+1, H, W), got {frames.shape}")
    gray = np.stack([_gray(f) for f in frames])
    moved = (np.abs(np.diff(gray, axis=0)) > threshold).sum(axis=0)
    return np.minimum(moved, 1).astype(np.float32)
